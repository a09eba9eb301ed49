"""Parity of exported GGUFs with transformers, through llama-cpp-python on CPU.

Weights are drawn with std 0.1 (not the usual 0.02) so that a layout bug moves logits far outside the
tolerance (dropping the Q/K permutation moves them by ~0.5 of their range, against a 1e-3 limit). Larger
stds push F16 itself past 1e-3: llama.cpp rounds activations to F16 in its CPU matmuls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def _sentencepiece_llama(out: Path) -> Path:
    """A Llama whose tokenizer is a SentencePiece model trained on the shipped corpus (byte fallback on)."""
    import sentencepiece as spm
    import transformers
    from ftwiz.core.tiny.tokenizer import corpus_text

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "sp"), vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    (out / "tokenizer.model").write_bytes((out / "sp.model").read_bytes())
    tokenizer = transformers.LlamaTokenizer.from_pretrained(out)
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}{{ '[' + m['role'] + '] ' + m['content'] + ' ' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '[assistant]' }}{% endif %}")
    tokenizer.save_pretrained(out)  # writes tokenizer.json; tokenizer.model stays beside it
    _llama2_style_tokenizer_json(out)
    for name in ("sp.model", "sp.vocab", "corpus.txt"):
        (out / name).unlink()
    import torch

    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                                      tie_word_embeddings=False, rms_norm_eps=1e-6)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0, 0.1)
    model.generation_config = transformers.GenerationConfig(bos_token_id=1, eos_token_id=2)
    model.save_pretrained(out)
    return out


def _llama2_style_tokenizer_json(out: Path) -> None:
    """Give tokenizer.json the pipeline Llama 2 / Mistral / TinyLlama publish (facts of those files): a
    normalizer that prepends '▁' to every text segment and replaces spaces, and a post-processor adding <s>.

    transformers 5 re-derives a different pipeline when it converts a bare tokenizer.model (no '▁' after
    special tokens), which llama.cpp cannot reproduce; loading the published layout through
    PreTrainedTokenizerFast keeps the file's behaviour, as users' Llama 2 checkpoints have it.
    """
    tj = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    tj["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    tj["pre_tokenizer"] = None
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    tj["post_processor"] = {"type": "TemplateProcessing", "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos,
                                     {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    (out / "tokenizer.json").write_text(json.dumps(tj), encoding="utf-8")
    cfg = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")


def _save_random_body(out: Path, config, *, std: float = 0.05, vector_std: float | None = None) -> Path:
    """A randomly initialised model for ``config`` saved into ``out`` (replacing weights already there):
    matrices from N(0, std); with ``vector_std`` the 1-D weights too (Gemma's norms sit around 0)."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0, std)
            elif vector_std is not None:
                param.normal_(0, vector_std)
    for stale in out.glob("model*.safetensors"):
        stale.unlink()
    model.save_pretrained(out)
    return out


def _phi3_config(vocab_size: int, **overrides):
    import transformers

    return transformers.Phi3Config(**{
        "vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False, **overrides})


def test_sentencepiece_llama_parity(tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.verify import verify_gguf

    model = _sentencepiece_llama(tmp_path / "spm")
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
    out = _sentencepiece_llama(tmp_path / "tiny-p3")
    _save_random_body(out, _phi3_config(len(transformers.AutoTokenizer.from_pretrained(out))))
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


def _gemma(tmp_path: Path, name: str, config_cls: str, **extra) -> Path:
    """A tiny Gemma 2/3 body on the SentencePiece tokenizer (Gemma ships SentencePiece). Norm weights get
    random values around 0 (Gemma stores w for x * (1 + w)), so a missing +1 cannot hide."""
    import transformers

    out = _sentencepiece_llama(tmp_path / name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    config = getattr(transformers, config_cls)(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32, max_position_embeddings=512,
        rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0, sliding_window=64, **extra)
    return _save_random_body(out, config, vector_std=0.2)


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
    import transformers
    from ftwiz.core.export.verify import verify_gguf

    out = _sentencepiece_llama(tmp_path / "tiny-g3mm")
    n = len(transformers.AutoTokenizer.from_pretrained(out))
    text = dict(vocab_size=n + 3, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32, max_position_embeddings=512,
                sliding_window=64, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14)
    config = transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                                       boi_token_index=n, eoi_token_index=n + 1, image_token_index=n + 2)
    _save_random_body(out, config, vector_std=0.2)
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

    out = _sentencepiece_llama(tmp_path / "tiny-p3-long")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    half = int(16 * partial) // 2
    rng = torch.Generator().manual_seed(1)
    short = (1.0 + 2.0 * torch.rand(half, generator=rng)).tolist()
    long = (4.0 + 8.0 * torch.rand(half, generator=rng)).tolist()
    _save_random_body(out, _phi3_config(
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
    _save_random_body(out, _phi3_config(len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    path = _export(out, tmp_path, "F16")
    field = gguf.GGUFReader(path).fields["tokenizer.ggml.pre"]
    assert bytes(field.parts[field.data[0]]).decode() == "gpt-4o"
    report = verify_gguf(path, out, prompts=["What's HTTPServer doing? They'll say 12345.", "naïve café 東京"])
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]
