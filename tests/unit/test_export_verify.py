"""Parity of exported GGUFs with transformers, through llama-cpp-python on CPU.

Weights are drawn with std 0.1 (not the usual 0.02) so that a layout bug moves logits far outside the
tolerance (dropping the Q/K permutation moves them by ~0.5 of their range, against a 1e-3 limit). Larger
stds push F16 itself past 1e-3: llama.cpp rounds activations to F16 in its CPU matmuls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spm_models import phi3_config, save_random_body, sentencepiece_llama

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def llama01(tmp_path_factory) -> Path:
    from ftwiz.core.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("llama01"), arch="llama", init_std=0.1)


def _export(model: Path, tmp_path: Path, quant: str) -> Path:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(model, tmp_path / f"m-{quant}.gguf", quant)


def test_llama_f16_matches_transformers(llama01: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.verify import verify_gguf

    report = verify_gguf(_export(llama01, tmp_path, "F16"), llama01)
    assert report.quant == "F16"
    assert report.tokenization.passed, report.tokenization.detail
    assert report.logits.passed, report.logits.detail
    assert report.logits.value is not None and report.logits.value <= 1e-3
    assert report.chat_template.passed, report.chat_template.detail
    assert report.eos.passed, report.eos.detail
    assert report.passed


def test_missing_qk_permutation_is_caught(llama01: Path, tmp_path: Path, monkeypatch) -> None:
    from ftwiz.core.export import arch
    from ftwiz.core.export.verify import verify_gguf

    monkeypatch.setitem(arch.ARCHITECTURES, "LlamaForCausalLM", arch.ArchInfo("llama", permute_qk=False))
    report = verify_gguf(_export(llama01, tmp_path, "F32"), llama01)
    assert report.tokenization.passed  # the tokenizer is fine; the attention layout is not
    assert report.logits.passed is False, report.logits.detail
    assert report.logits.value > 1e-2  # far outside the 1e-3 tolerance, not a borderline miss
    assert not report.passed


def test_llama_q8_0_cosine(llama01: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.verify import verify_gguf

    report = verify_gguf(_export(llama01, tmp_path, "Q8_0"), llama01)
    assert report.quant == "Q8_0"
    assert report.logits.passed, report.logits.detail
    assert report.logits.value >= 0.99


@pytest.mark.parametrize("arch_kw", [{"arch": "qwen2"}, {"arch": "qwen3", "head_dim": 32}], ids=["qwen2", "qwen3"])
def test_qwen_f16_parity(arch_kw: dict, tmp_path: Path) -> None:
    from ftwiz.core.export.verify import verify_gguf
    from ftwiz.core.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "model", init_std=0.05, **arch_kw)  # 0.1 puts qwen3 F16 at ~1e-3
    report = verify_gguf(_export(model, tmp_path, "F16"), model)
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]


def testsentencepiece_llama_parity(tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.verify import verify_gguf

    model = sentencepiece_llama(tmp_path / "spm")
    path = _export(model, tmp_path, "F16")
    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.ggml.model"]
    assert bytes(field.parts[field.data[0]]).decode() == "llama"
    assert "tokenizer.ggml.scores" in reader.fields
    report = verify_gguf(path, model, prompts=["The quick brown fox.", "Hello world, 2024!", "café 東京"])
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]


def test_k_quant_is_reported_on_256_wide_model(tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "wide", arch="llama", hidden_size=256, num_heads=4, num_kv_heads=2,
                             init_std=0.05)
    result = export_model(model, ["Q4_K_M"], out=tmp_path / "out", verify=True)
    path = Path(result.gguf_paths[0])
    assert path.name == "wide-Q4_K_M.gguf"
    reader = gguf.GGUFReader(path)
    types = {t.tensor_type for t in reader.tensors}
    assert gguf.GGMLQuantizationType.Q4_K in types  # rows of 256 can really be K-quantized
    report = result.reports[0]
    assert report.quant == "Q4_K_M"
    assert report.logits.passed is None and report.logits.value > 0.8  # reported, not judged
    assert report.tokenization.passed and report.eos.passed
    saved = json.loads(path.with_name(path.name + ".verify.json").read_text())
    assert saved["quant"] == "Q4_K_M"
    assert not list(path.parent.glob(".*intermediate*"))  # the F16 intermediate was removed


def test_phi3_fused_projections_parity(tmp_path: Path) -> None:
    """Phi-3 stores q/k/v and gate/up fused; llama.cpp's phi3 graph takes them as they are. Phi-3 ships a
    SentencePiece tokenizer, so the SentencePiece Llama's tokenizer is reused with a Phi3 body."""
    import transformers
    from ftwiz.core.export.verify import verify_gguf

    # not named "phi3": llama.cpp then expects Phi-3's <|end|> token in the vocabulary (a name-based rule)
    out = sentencepiece_llama(tmp_path / "tiny-p3")
    save_random_body(out, phi3_config(len(transformers.AutoTokenizer.from_pretrained(out))))
    report = verify_gguf(_export(out, tmp_path, "F16"), out)
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]


def test_llama3_rope_scaling_parity(llama01: Path, tmp_path: Path) -> None:
    """Llama 3.1+ rescale rope frequencies; the GGUF carries them as rope_freqs.weight."""
    import shutil

    import gguf
    from ftwiz.core.export.verify import verify_gguf

    model = tmp_path / "llama31"
    shutil.copytree(llama01, model)
    cfg = json.loads((model / "config.json").read_text())
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64}
    if "rope_parameters" in cfg:
        cfg["rope_parameters"] = {**cfg["rope_parameters"], **scaling}
    else:
        cfg["rope_scaling"] = scaling
    (model / "config.json").write_text(json.dumps(cfg))
    path = _export(model, tmp_path, "F32")
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    assert list(tensors["rope_freqs.weight"].shape) == [8]  # head_dim 16 / 2
    report = verify_gguf(path, model)
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]
    unscaled = verify_gguf(_export(llama01, tmp_path, "F16"), model)
    assert unscaled.logits.passed is False  # the check is sensitive to the scaling actually being applied


def test_quantizing_a_broken_file_is_a_user_error(tmp_path: Path) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.quantize import quantize_gguf

    src = tmp_path / "broken.gguf"
    src.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(FtwizError, match="could not quantize"):
        quantize_gguf(src, tmp_path / "out.gguf", "Q4_K_M")
    assert not list(tmp_path.glob("*out.gguf*"))


def test_q8_0_logit_judgement_fails_bugs_and_reports_small_model_rounding() -> None:
    """A correct Q8_0 file of a tiny model measured cosine 0.984 (8-bit weights and activations over few terms):
    reported, not failed, so register/chat/serve do not refuse it; a conversion bug's logits still fail."""
    import numpy as np
    from ftwiz.core.export.verify import _compare_logits

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(8, 512)).astype(np.float32)

    def with_cosine(target: float) -> np.ndarray:
        noise = rng.normal(size=reference.shape).astype(np.float32)
        noise -= (noise * reference).sum(-1, keepdims=True) / (reference * reference).sum(-1, keepdims=True) * reference
        noise *= (np.linalg.norm(reference, axis=-1, keepdims=True) / np.linalg.norm(noise, axis=-1, keepdims=True))
        return reference * target + noise * float(np.sqrt(1 - target**2))

    good, small_model, bug = (_compare_logits(reference, with_cosine(c), "Q8_0") for c in (0.998, 0.984, 0.6))
    assert good.passed is True and bug.passed is False
    assert small_model.passed is None and "export F16 with --verify" in small_model.detail
    assert abs(small_model.value - 0.984) < 1e-3
