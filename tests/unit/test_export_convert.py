"""Structural tests of the HF -> GGUF converter, read back with gguf.GGUFReader (no llama.cpp needed).

What a user would notice: llama.cpp refusing the file (missing keys, unknown pre-tokenizer, no merges),
a tied model carrying a useless output.weight, norms quantized, or Q/K rows in the wrong rope order.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from ftwiz.core.errors import FtwizError


def _reader(path: Path):
    import gguf

    return gguf.GGUFReader(path)


def _value(reader, key: str):
    field = reader.fields[key]
    if len(field.data) == 1:
        part = field.parts[field.data[0]]
        if field.types[0].name == "STRING":
            return bytes(part).decode("utf-8")
        return part.tolist()[0]
    return [bytes(field.parts[i]).decode("utf-8") if field.types[-1].name == "STRING" else field.parts[i].tolist()[0]
            for i in field.data]


def _tensors(reader) -> dict:
    return {t.name: t for t in reader.tensors}


@pytest.fixture(scope="module")
def qwen2_f16(tiny_qwen2: Path, tmp_path_factory) -> Path:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(tiny_qwen2, tmp_path_factory.mktemp("q2") / "m.gguf", "F16")


@pytest.fixture(scope="module")
def llama_f32(tiny_llama: Path, tmp_path_factory) -> Path:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(tiny_llama, tmp_path_factory.mktemp("ll") / "m.gguf", "F32")


def test_qwen2_keys_types_and_tied_output(qwen2_f16: Path, tiny_qwen2: Path) -> None:
    import gguf

    reader = _reader(qwen2_f16)
    config = json.loads((tiny_qwen2 / "config.json").read_text())
    assert _value(reader, "general.architecture") == "qwen2"
    assert _value(reader, "qwen2.block_count") == 2
    assert _value(reader, "qwen2.embedding_length") == 64
    assert _value(reader, "qwen2.feed_forward_length") == 128
    assert _value(reader, "qwen2.attention.head_count") == 4
    assert _value(reader, "qwen2.attention.head_count_kv") == 2
    assert _value(reader, "qwen2.context_length") == config["max_position_embeddings"]
    assert _value(reader, "qwen2.rope.freq_base") == pytest.approx(1e6)
    assert _value(reader, "qwen2.attention.layer_norm_rms_epsilon") == pytest.approx(1e-6)
    assert _value(reader, "general.file_type") == 1
    tensors = _tensors(reader)
    assert "output.weight" not in tensors, "tied embeddings must not be duplicated as output.weight"
    assert "token_embd.weight" in tensors
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert tensors["output_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert tensors["blk.1.attn_q.bias"].tensor_type == gguf.GGMLQuantizationType.F32
    assert tensors["blk.1.ffn_down.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    # ggml shapes are reversed: [in, out]
    assert list(tensors["blk.0.attn_k.weight"].shape) == [64, 32]
    # token_embd + output_norm + per block: 2 norms, q/k/v weight+bias, o, gate, up, down
    assert len(tensors) == 2 + 2 * 12


def test_qwen2_tokenizer_metadata(qwen2_f16: Path, tiny_qwen2: Path) -> None:
    from transformers import AutoTokenizer

    reader = _reader(qwen2_f16)
    tj = json.loads((tiny_qwen2 / "tokenizer.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny_qwen2)
    assert _value(reader, "tokenizer.ggml.model") == "gpt2"
    assert _value(reader, "tokenizer.ggml.pre") == "qwen2"
    assert len(reader.fields["tokenizer.ggml.merges"].data) == len(tj["model"]["merges"])
    tokens = _value(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == json.loads((tiny_qwen2 / "config.json").read_text())["vocab_size"]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tokens[im_end] == "<|im_end|>"
    assert _value(reader, "tokenizer.ggml.token_type")[im_end] == 3  # control
    assert _value(reader, "tokenizer.ggml.eos_token_id") == im_end
    assert _value(reader, "tokenizer.ggml.eot_token_id") == im_end
    assert "tokenizer.ggml.bos_token_id" in reader.fields  # llama.cpp's default (11) would be wrong
    assert _value(reader, "tokenizer.chat_template") == tok.chat_template


def test_llama_permutes_q_and_k_rows(llama_f32: Path, tiny_llama: Path) -> None:
    from ftwiz.core.export.convert import permute_rotate_half
    from safetensors.numpy import load_file

    reader = _reader(llama_f32)
    hf = load_file(str(tiny_llama / "model.safetensors"))
    tensors = _tensors(reader)
    q_hf = hf["model.layers.0.self_attn.q_proj.weight"]
    k_hf = hf["model.layers.0.self_attn.k_proj.weight"]
    q_gguf = np.asarray(tensors["blk.0.attn_q.weight"].data).reshape(q_hf.shape)
    k_gguf = np.asarray(tensors["blk.0.attn_k.weight"].data).reshape(k_hf.shape)
    assert np.array_equal(q_gguf, permute_rotate_half(q_hf, 4))
    assert np.array_equal(k_gguf, permute_rotate_half(k_hf, 2))
    assert not np.array_equal(q_gguf, q_hf)
    v_gguf = np.asarray(tensors["blk.0.attn_v.weight"].data)
    assert np.array_equal(v_gguf.reshape(-1), hf["model.layers.0.self_attn.v_proj.weight"].reshape(-1))
    assert "output.weight" in tensors  # untied Llama keeps its head
    assert _value(reader, "tokenizer.ggml.pre") == "llama-bpe"
    assert _value(reader, "tokenizer.ggml.add_bos_token") is True
    assert _value(reader, "general.file_type") == 0


def test_permutation_pairs_rotate_half_halves() -> None:
    """One head of dim 4: rotate-half rows [a0, a1, b0, b1] become interleaved [a0, b0, a1, b1]."""
    from ftwiz.core.export.convert import permute_rotate_half

    rows = np.arange(4).reshape(4, 1)
    assert permute_rotate_half(rows, 1).reshape(-1).tolist() == [0, 2, 1, 3]


def test_qwen3_head_dim_and_q_norm(tiny_qwen3: Path, tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.convert import convert_to_gguf

    reader = _reader(convert_to_gguf(tiny_qwen3, tmp_path / "q3.gguf", "BF16"))
    assert _value(reader, "qwen3.attention.key_length") == 32
    assert _value(reader, "qwen3.attention.value_length") == 32
    tensors = _tensors(reader)
    assert list(tensors["blk.0.attn_q.weight"].shape) == [64, 4 * 32]
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.BF16
    assert tensors["blk.0.attn_q_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert list(tensors["blk.0.attn_k_norm.weight"].shape) == [32]


def test_q8_0_quantizes_matrices_and_keeps_norms(tiny_llama: Path, tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.convert import convert_to_gguf
    from safetensors.numpy import load_file

    reader = _reader(convert_to_gguf(tiny_llama, tmp_path / "q8.gguf", "Q8_0"))
    tensors = _tensors(reader)
    down = tensors["blk.1.ffn_down.weight"]
    assert down.tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert tensors["blk.1.ffn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    hf = load_file(str(tiny_llama / "model.safetensors"))["model.layers.1.mlp.down_proj.weight"]
    back = gguf.quants.dequantize(np.asarray(down.data), gguf.GGMLQuantizationType.Q8_0).reshape(hf.shape)
    assert np.max(np.abs(back - hf)) <= np.max(np.abs(hf)) / 127 + 1e-6
    assert _value(reader, "general.file_type") == 7


def test_unsupported_architecture_fails_before_writing(tiny_qwen2: Path, tmp_path: Path) -> None:
    import shutil

    from ftwiz.core.export.convert import convert_to_gguf

    model = tmp_path / "gpt"
    shutil.copytree(tiny_qwen2, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FtwizError) as info:
        convert_to_gguf(model, tmp_path / "out.gguf")
    assert "GPTNeoXForCausalLM" in info.value.what and info.value.fix
    assert not list(tmp_path.glob("*.gguf*")) and not list(tmp_path.glob(".out.gguf*"))


def test_unknown_rope_scaling_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    import shutil

    from ftwiz.core.export.convert import convert_to_gguf

    model = tmp_path / "m"
    shutil.copytree(tiny_llama, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg.pop("rope_parameters", None)
    cfg["rope_scaling"] = {"rope_type": "longrope", "factor": 4.0}
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FtwizError, match="longrope"):
        convert_to_gguf(model, tmp_path / "out.gguf")


def test_existing_output_is_not_overwritten(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.convert import convert_to_gguf

    out = tmp_path / "m.gguf"
    out.write_bytes(b"user data")
    with pytest.raises(FtwizError, match="already exists"):
        convert_to_gguf(tiny_qwen2, out)
    assert out.read_bytes() == b"user data"
    convert_to_gguf(tiny_qwen2, out, overwrite=True)
    assert out.read_bytes()[:4] == b"GGUF"


@pytest.mark.parametrize(("regex", "expected"), [
    (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
     r"|\s+(?!\S)|\s+", "llama-bpe"),
    (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
     r"|\s+(?!\S)|\s+", "qwen2"),
    (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", "gpt-2"),
    (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
     r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
     r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+", "gpt-4o"),
    (r"[A-Z]+|\d", "default"),
])
def test_pre_tokenizer_is_derived_from_the_split_regex(regex: str, expected: str) -> None:
    from ftwiz.core.export.vocab import detect_pre_tokenizer

    tj = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}
    assert detect_pre_tokenizer(tj) == expected


def test_gpt2_byte_level_without_split_is_gpt2() -> None:
    from ftwiz.core.export.vocab import detect_pre_tokenizer

    assert detect_pre_tokenizer({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "gpt-2"


def test_progress_reports_every_tensor(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.convert import convert_to_gguf

    seen: list[tuple[int, int]] = []
    convert_to_gguf(tiny_qwen2, tmp_path / "p.gguf", "F16", progress=lambda d, t, m: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == len(_tensors(_reader(tmp_path / "p.gguf")))


@pytest.mark.parametrize("use_ggml", [True, False], ids=["ggml-kernels", "numpy-table"])
def test_bf16_to_f16_bits_match_torch_for_every_pattern(use_ggml: bool) -> None:
    """All 65536 bfloat16 values, including zeros, subnormals, overflow, inf and NaN, convert exactly as
    torch's own bfloat16 -> float16 cast (an independent implementation) does, on both paths."""
    import torch
    from ftwiz.core.export.dtypes import bf16_bits_to_f16

    bits = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = torch.from_numpy(bits.copy()).view(torch.bfloat16).to(torch.float16).numpy()
    got = bf16_bits_to_f16(bits, chunk=1000, use_ggml=use_ggml)
    nan = np.isnan(expected)
    assert got.shape == bits.shape
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got.view(np.uint16)[~nan], expected.view(np.uint16)[~nan])


@pytest.mark.parametrize("use_ggml", [True, False], ids=["ggml-kernels", "numpy"])
def test_f32_to_f16_rounds_like_numpy(use_ggml: bool) -> None:
    """Ties to even, overflow to inf, subnormals and signed zeros: the fast kernel agrees with numpy."""
    from ftwiz.core.export.dtypes import f32_to_f16

    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.standard_normal(200_003).astype(np.float32) * 0.02,
        np.array([0.0, -0.0, 65504.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 1e-10, np.inf, -np.inf],
                 dtype=np.float32),
        (np.arange(1, 4096, dtype=np.float32) + 0.5) * 2.0**-10,  # exact ties at float16 spacing
    ]).reshape(-1, 1)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    got = f32_to_f16(values, use_ggml=use_ggml)
    assert got.shape == values.shape
    assert np.array_equal(got.view(np.uint16), expected.view(np.uint16))


def test_q8_0_from_ggml_is_bit_identical_to_gguf_numpy() -> None:
    """The fast Q8_0 path (ggml's C quantizer) writes exactly the bytes gguf's numpy reference writes,
    including all-zero blocks, exact .5 ties after scaling and large outliers."""
    from ftwiz.core.export.dtypes import quantize

    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((64, 256)) * 0.02).astype(np.float32)
    rows[0, :32] = 0.0
    rows[1, :32] = np.arange(32, dtype=np.float32) - 15.5  # many exact .5 ties once scaled by 1 ...
    rows[1, 0] = 127.0  # ... because the block's scale is then exactly 1
    rows[2, 5] = 300.0
    fast = quantize(rows, gguf.GGMLQuantizationType.Q8_0)
    slow = quantize(rows, gguf.GGMLQuantizationType.Q8_0, use_ggml=False)
    assert fast.shape == slow.shape == (64, 256 // 32 * 34)
    assert fast.tobytes() == slow.tobytes()


def test_ggml_kernels_are_found_in_the_installed_llama_cpp() -> None:
    """The bootstrap installs a llama-cpp-python whose ggml-cpu exports the casts; without them F16
    export silently falls back to the 2x slower numpy path, so CI should notice."""
    from ftwiz.core.export.ggml_kernels import kernels

    found = kernels()
    assert found is not None and found.quantize_chunk is not None


def test_bf16_model_exports_like_its_float32_values(tiny_llama: Path, tmp_path: Path) -> None:
    import gguf
    import torch
    from ftwiz.core.export.convert import convert_to_gguf, permute_rotate_half
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16).save_pretrained(model)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny_llama / name).is_file():
            (model / name).write_bytes((tiny_llama / name).read_bytes())
    hf = load_file(str(model / "model.safetensors"))
    for out_type, want in (("F16", torch.float16), ("F32", torch.float32), ("BF16", None)):
        reader = _reader(convert_to_gguf(model, tmp_path / f"m-{out_type}.gguf", out_type))
        tensors = _tensors(reader)
        down = hf["model.layers.0.mlp.down_proj.weight"]
        q = permute_rotate_half(hf["model.layers.0.self_attn.q_proj.weight"], 4)
        for name, source in (("blk.0.ffn_down.weight", down), ("blk.0.attn_q.weight", q)):
            data = np.asarray(tensors[name].data)
            if want is None:
                assert tensors[name].tensor_type == gguf.GGMLQuantizationType.BF16
                assert np.array_equal(data.reshape(-1).view(np.uint16),
                                      source.contiguous().view(torch.int16).numpy().reshape(-1).view(np.uint16))
            else:
                assert np.array_equal(data.reshape(source.shape), source.to(want).numpy()), (out_type, name)


@pytest.mark.parametrize("out_type", ["F16", "Q8_0", "F32"])
def test_pieces_and_blocks_give_the_same_file_as_whole_tensors(tiny_llama: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, out_type: str) -> None:
    """Tensors cut into pieces of a few rows (whole heads for the permuted q/k) and converted a row at a time
    on 3 threads produce the same bytes as one piece per tensor on one thread."""
    import torch
    from ftwiz.core.export import convert, gguf_data
    from transformers import AutoModelForCausalLM

    model = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16).save_pretrained(model)
    for f in tiny_llama.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens", "generation")):
            (model / f.name).write_bytes(f.read_bytes())
    whole = tmp_path / "whole.gguf"
    monkeypatch.setattr(gguf_data, "PIECE_BYTES", 1 << 40)
    monkeypatch.setattr(gguf_data, "BLOCK_BYTES", 1 << 40)
    monkeypatch.setattr(convert, "write_data", lambda *a, **k: gguf_data.write_data(*a, **k, threads=1))
    convert.convert_to_gguf(model, whole, out_type)
    plans = convert.plan_tensors(model, convert.model_params(model), out_type)
    assert max(len(gguf_data.split(p, 0, piece_bytes=1000)) for p in plans) > 10  # really cut up
    # the reference itself has q rows in llama.cpp's order (checked against the HF weights, 4 heads)
    from ftwiz.core.export.dtypes import to_gguf_array
    from ftwiz.core.export.tensors import NUMPY_DTYPES, read_header

    q_plan = next(p for p in plans if p.name == "blk.0.attn_q.weight")
    ref = next(r for r in read_header(model / "model.safetensors")[0] if r.name == q_plan.ref.name)
    with open(ref.file, "rb") as handle:
        handle.seek(ref.start)
        bits = np.frombuffer(handle.read(ref.nbytes), dtype=NUMPY_DTYPES[ref.dtype]).reshape(ref.shape)
    expected = np.ascontiguousarray(to_gguf_array(convert.permute_rotate_half(bits, 4), "BF16", q_plan.qtype))
    got = np.asarray(_tensors(_reader(whole))["blk.0.attn_q.weight"].data)
    assert got.tobytes() == expected.tobytes()

    for piece_bytes in (1000, 5000):  # one head per q/k piece; two heads per piece
        cut = tmp_path / f"cut-{piece_bytes}.gguf"
        monkeypatch.setattr(gguf_data, "PIECE_BYTES", piece_bytes)
        monkeypatch.setattr(gguf_data, "BLOCK_BYTES", 1)
        monkeypatch.setattr(convert, "write_data", lambda *a, **k: gguf_data.write_data(*a, **k, threads=3))
        convert.convert_to_gguf(model, cut, out_type)
        assert cut.read_bytes() == whole.read_bytes(), piece_bytes


def test_gemma3_image_text_config_saved_as_a_diff_is_completed(tmp_path: Path) -> None:
    """google/gemma-3-4b-it's config.json (transformers 4.50) keeps only the text keys that differ from the
    defaults: no vocab_size, head_dim or rope_theta. ftwiz fills them from transformers' Gemma3TextConfig
    rather than guessing hidden/heads (320, not 256) or a rope base of 10000 (not 1e6)."""
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "torch_dtype": "bfloat16",
        "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                        "num_attention_heads": 8, "num_hidden_layers": 34, "num_key_value_heads": 4,
                        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}))
    params = model_params(tmp_path)
    assert (params.info.gguf_arch, params.vocab_size, params.head_dim) == ("gemma3", 262208, 256)
    assert (params.rope_theta, params.rope_theta_swa, params.context_length) == (1e6, 10000.0, 131072)
    assert params.rope_scaling["rope_type"] == "linear" and params.rope_scaling["factor"] == 8.0
    assert params.tied and params.sliding_window == 1024


@pytest.mark.parametrize(("arch", "settings", "field"), [
    ("Gemma2ForCausalLM", {"attn_logit_softcapping": None}, "attn_logit_softcapping"),
    ("Gemma2ForCausalLM", {"final_logit_softcapping": None}, "final_logit_softcapping"),
    ("Gemma3ForCausalLM", {"attn_logit_softcapping": 50.0}, "attn_logit_softcapping"),
])
def test_gemma_soft_capping_llama_cpp_cannot_honour_is_refused(tmp_path: Path, arch: str, settings: dict,
                                                               field: str) -> None:
    """llama.cpp always soft-caps Gemma 2 and never Gemma 3; a fine-tune that changed that would export
    fine and answer differently (the logits move by 2-6% of their range), so it is refused up front."""
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": [arch], "hidden_size": 64, "num_attention_heads": 4, "head_dim": 16,
        "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 400, **settings}))
    with pytest.raises(FtwizError, match="soft-cap") as err:
        model_params(tmp_path)
    assert err.value.where.field == field


def test_missing_required_config_key_names_it(tmp_path: Path) -> None:
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128}))
    with pytest.raises(FtwizError, match="no vocab_size") as err:
        model_params(tmp_path)
    assert err.value.where.field == "vocab_size"


def test_truncated_safetensors_is_a_clear_error_and_leaves_nothing(tiny_llama: Path, tmp_path: Path) -> None:
    import shutil

    from ftwiz.core.export.convert import convert_to_gguf

    model = tmp_path / "cut"
    shutil.copytree(tiny_llama, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-5000])
    with pytest.raises(FtwizError, match="truncated") as err:
        convert_to_gguf(model, tmp_path / "m.gguf", "F16")
    assert "fetch the file again" in err.value.fix
    assert not list(tmp_path.glob("*m.gguf*"))


def test_empty_tensors_are_written_as_empty(tmp_path: Path) -> None:
    """A checkpoint may carry 0-sized tensors; they get a header entry and no data, not a crash."""
    from ftwiz.core.export import gguf_data
    from ftwiz.core.export.convert import TensorPlan, _nbytes
    from ftwiz.core.export.tensors import read_header
    from safetensors.numpy import save_file

    q = gguf.GGMLQuantizationType
    for shape in ((0, 64), (64, 0), (0,)):
        save_file({"w": np.zeros(shape, dtype=np.float32)}, str(tmp_path / "e.safetensors"))
        ref = read_header(tmp_path / "e.safetensors")[0][0]
        out = tmp_path / "out.bin"
        out.write_bytes(b"\0" * 7)
        gguf_data.write_data(out, 32, [TensorPlan(ref, "x", shape, q.F16, _nbytes(shape, q.F16))])
        assert out.stat().st_size == 32  # the header padded to the alignment, no data
