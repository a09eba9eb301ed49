"""Export parity for the architectures beyond Llama/Qwen: Gemma 2, Gemma 3 (text and image-text), Phi-3
LongRoPE and Phi-4-mini's o200k BPE, through llama-cpp-python, each with a deliberate break that must fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spm_models import gemma3_image_text, phi3_config, save_random_body, sentencepiece_llama

pytest.importorskip("llama_cpp")


def _export(model: Path, tmp_path: Path, quant: str) -> Path:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(model, tmp_path / f"m-{quant}.gguf", quant)


def _gemma(tmp_path: Path, name: str, config_cls: str, **extra) -> Path:
    """A tiny Gemma 2/3 body on the SentencePiece tokenizer (Gemma ships SentencePiece). Norm weights get
    random values around 0 (Gemma stores w for x * (1 + w)), so a missing +1 cannot hide."""
    import transformers

    out = sentencepiece_llama(tmp_path / name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    config = getattr(transformers, config_cls)(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32, max_position_embeddings=512,
        rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0, sliding_window=64, **extra)
    return save_random_body(out, config, vector_std=0.2)


@pytest.mark.parametrize("kind", ["gemma2", "gemma3"])
def test_gemma_parity_and_layout(kind: str, tmp_path: Path, monkeypatch) -> None:
    """Gemma 2 (soft-capping, alternating local/global layers) and Gemma 3 (q/k norms, local layers with
    their own rope base, 7 layers so one is global): F16 logits match transformers within 2e-3 of their
    range (llama.cpp evaluates GELU from a float16 table; an F32 file is off by ~3e-4 too), and writing
    the norms without +1 (Gemma 2) or the global layers' rope base wrong (Gemma 3) fails the check."""
    import gguf
    import numpy as np
    from ftwiz.core.export.verify import verify_gguf
    from safetensors.numpy import load_file

    if kind == "gemma2":
        model = _gemma(tmp_path, "tiny-g2", "Gemma2Config", num_hidden_layers=4, attn_logit_softcapping=50.0,
                       final_logit_softcapping=30.0)
    else:
        model = _gemma(tmp_path, "tiny-g3", "Gemma3TextConfig", num_hidden_layers=7, rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
    path = _export(model, tmp_path, "F16")
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    assert "output.weight" not in tensors  # tied
    hf = load_file(str(model / "model.safetensors"))
    norm = np.asarray(tensors["blk.0.post_attention_norm.weight"].data)
    assert np.allclose(norm, hf["model.layers.0.post_attention_layernorm.weight"] + 1.0)
    assert f"{kind}.attention.sliding_window" in reader.fields
    if kind == "gemma2":
        assert float(reader.fields["gemma2.attn_logit_softcapping"].parts[-1][0]) == 50.0
    else:
        assert "blk.0.attn_q_norm.weight" in tensors
        assert float(reader.fields["gemma3.rope.freq_base_swa"].parts[-1][0]) == 10000.0
    report = verify_gguf(path, model)
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]
    assert report.logits.value <= 2e-3

    from ftwiz.core.export import arch

    if kind == "gemma2":
        info = arch.ARCHITECTURES["Gemma2ForCausalLM"]
        monkeypatch.setitem(arch.ARCHITECTURES, "Gemma2ForCausalLM", arch.ArchInfo(
            info.gguf_arch, permute_qk=False, default_tied=True, norm_plus_one=False, swa_pattern=2))
    else:
        rope = arch._rope
        monkeypatch.setattr(arch, "_rope", lambda cfg: (10000.0, *rope(cfg)[1:]))
    broken = verify_gguf(_export(model, tmp_path / "broken", "F32"), model)
    assert broken.logits.passed is False and broken.logits.value > 1e-2, broken.logits.detail


def test_gemma_attention_scale_llama_cpp_cannot_run_is_refused(tmp_path: Path) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["Gemma2ForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "head_dim": 32,
        "num_hidden_layers": 4, "intermediate_size": 128, "vocab_size": 400, "query_pre_attn_scalar": 100}))
    with pytest.raises(FtwizError, match="query_pre_attn_scalar") as err:
        model_params(tmp_path)
    assert err.value.where.field == "query_pre_attn_scalar"


def test_gemma3_image_text_checkpoint_exports_its_language_model(tmp_path: Path) -> None:
    """Gemma 3 4B and larger ship as Gemma3ForConditionalGeneration (config under text_config, weights
    under language_model.*, plus a vision tower): the GGUF holds the language model, which matches."""
    import gguf
    from ftwiz.core.export.verify import verify_gguf

    out = gemma3_image_text(tmp_path / "tiny-g3mm")
    path = _export(out, tmp_path, "F16")
    reader = gguf.GGUFReader(path)
    assert bytes(reader.fields["general.architecture"].parts[-1]).decode() == "gemma3"
    names = {t.name for t in reader.tensors}
    assert "blk.1.attn_q_norm.weight" in names and not any(n.startswith(("v.", "mm.")) for n in names)
    report = verify_gguf(path, out)
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]


@pytest.mark.parametrize("partial", [1.0, 0.5], ids=["full-rotary", "partial-rotary"])
def test_phi3_longrope_parity(partial: float, tmp_path: Path) -> None:
    """Phi-3 128k / 3.5 / Phi-4-mini extend the context with LongRoPE: per-frequency factors (written as
    rope_factors_long/short tensors) and a cos/sin scale. Short prompts use the short factors on both
    sides (llama.cpp switches to the long ones only for contexts beyond the original 256 here)."""
    import gguf
    import torch
    import transformers
    from ftwiz.core.export.verify import verify_gguf

    out = sentencepiece_llama(tmp_path / "tiny-p3-long")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    half = int(16 * partial) // 2
    rng = torch.Generator().manual_seed(1)
    short = (1.0 + 2.0 * torch.rand(half, generator=rng)).tolist()
    long = (4.0 + 8.0 * torch.rand(half, generator=rng)).tolist()
    save_random_body(out, phi3_config(
        len(tokenizer), max_position_embeddings=1024, original_max_position_embeddings=256,
        partial_rotary_factor=partial, rope_scaling={"rope_type": "longrope", "long_factor": long,
                                                     "short_factor": short}))
    path = _export(out, tmp_path, "F16")
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    assert list(tensors["rope_factors_short.weight"].data) == pytest.approx(short)
    assert list(tensors["rope_factors_long.weight"].data) == pytest.approx(long)
    assert int(reader.fields["phi3.rope.scaling.original_context_length"].parts[-1][0]) == 256
    report = verify_gguf(path, out)
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]


def test_longrope_outside_phi3_is_refused(tmp_path: Path) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 400,
        "rope_scaling": {"rope_type": "longrope", "long_factor": [1.0] * 8, "short_factor": [1.0] * 8}}))
    with pytest.raises(FtwizError, match="longrope"):
        model_params(tmp_path)


def test_phi4_mini_style_bpe_with_o200k_split_parity(tmp_path: Path) -> None:
    """Phi-4-mini: a Phi3 body, LongRoPE-free here, with a byte-level BPE tokenizer that splits text like
    OpenAI's o200k ("What's" stays one piece, "HTTPServer" splits by case). Tokenization must match
    llama.cpp's gpt-4o pre-tokenizer on the sample prompts; another split would break "What's"."""
    import shutil

    import gguf
    import transformers
    from ftwiz.core.export.verify import verify_gguf
    from ftwiz.core.export.vocab import _GPT4O
    from ftwiz.core.tiny import build_tiny_model

    base = build_tiny_model(tmp_path / "chatml", arch="qwen2")
    out = tmp_path / "tiny-p4"
    out.mkdir()
    for f in base.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens", "generation")):
            shutil.copy(f, out / f.name)
    tj = json.loads((out / "tokenizer.json").read_text())
    split = next(p for p in tj["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split")
    split["pattern"] = {"Regex": _GPT4O}
    (out / "tokenizer.json").write_text(json.dumps(tj))
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert "What's" in "".join(tokenizer.tokenize("What's")).replace("\u0120", " ")  # one piece, o200k style
    save_random_body(out, phi3_config(len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    path = _export(out, tmp_path, "F16")
    field = gguf.GGUFReader(path).fields["tokenizer.ggml.pre"]
    assert bytes(field.parts[field.data[0]]).decode() == "gpt-4o"
    report = verify_gguf(path, out, prompts=["What's HTTPServer doing? They'll say 12345.", "naïve café 東京"])
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]
