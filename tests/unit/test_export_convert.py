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
