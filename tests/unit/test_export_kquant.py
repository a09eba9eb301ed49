"""K-quants written straight from safetensors (core/export/kquant.py) against llama.cpp's own quantizer.

The oracle is ``llama_model_quantize`` (llama.cpp's quantize tool, inside llama-cpp-python) run on our F16
GGUF, the path K-quant exports took before: every tensor must come out with the same type, shape and bytes,
the metadata the same, and llama.cpp must generate the same tokens from both files. The models have rows of
256 (real K-quant blocks), 12 layers (so llama.cpp's more-bits layer choice for attn_v / ffn_down is
exercised past blk.9, where name order and layer order differ), tied embeddings, fused projections (Phi-3),
and rows that are not whole blocks (llama.cpp's fallback types: Q5_0 / Q5_1 / Q8_0, and F16 when even 32
does not divide them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")


def _to_bf16(model: Path) -> Path:
    """Store the weights as bfloat16, as released checkpoints are (the F16 rounding then really differs)."""
    import torch
    from safetensors.torch import load_file, save_file

    for file in model.glob("*.safetensors"):
        tensors = load_file(file)
        save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, file, metadata={"format": "pt"})
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import sys

    import transformers
    from ftwiz.core.tiny import build_tiny_model

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from spm_models import phi3_config, save_random_body, sentencepiece_llama

    root = tmp_path_factory.mktemp("kquant")
    phi3 = sentencepiece_llama(root / "phi3")
    save_random_body(phi3, phi3_config(len(transformers.AutoTokenizer.from_pretrained(phi3)), hidden_size=256,
                                       intermediate_size=512, num_hidden_layers=4))
    return {
        # GQA 4/2, untied output, rows of 256 everywhere
        "llama12": _to_bf16(build_tiny_model(root / "llama12", arch="llama", hidden_size=256, num_heads=4,
                                             num_kv_heads=2, intermediate_size=256, num_layers=12, init_std=0.3)),
        # ffn_down rows of 264: neither 256 nor 32 divide them
        "llama_odd": _to_bf16(build_tiny_model(root / "llama_odd", arch="llama", hidden_size=256, num_heads=4,
                                               num_kv_heads=2, intermediate_size=264, num_layers=2, init_std=0.3)),
        # tied embeddings, every row 64 or 128 wide: all fallbacks, token_embd as the output
        "qwen2_tied": build_tiny_model(root / "qwen2_tied", arch="qwen2", hidden_size=64, num_layers=2),
        # rows of 80: not even whole 32-blocks, so F16 (the tied embeddings' Q8_0 too)
        "qwen2_narrow": build_tiny_model(root / "qwen2_narrow", arch="qwen2", hidden_size=80, num_heads=4,
                                         num_kv_heads=2, num_layers=2),
        # fused attn_qkv / ffn_up
        "phi3": phi3,
    }


def _llama_cpp_quantize(model: Path, quant: str, folder: Path) -> Path:
    """The oracle: our F16 GGUF through llama.cpp's quantizer."""
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.quantize import quantize_gguf

    f16 = convert_to_gguf(model, folder / "oracle-F16.gguf", "F16", overwrite=True)
    return quantize_gguf(f16, folder / f"oracle-{quant}.gguf", quant, overwrite=True)


def _tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    import gguf
    import numpy as np

    return {t.name: (t.tensor_type.name, tuple(int(d) for d in t.shape), np.asarray(t.data).tobytes())
            for t in gguf.GGUFReader(path).tensors}


def _metadata(path: Path) -> dict[str, list[bytes]]:
    import gguf

    return {f.name: [f.parts[i].tobytes() for i in f.data] for f in gguf.GGUFReader(path).fields.values()
            if not f.name.startswith("GGUF.")}


def _assert_same_as_llama_cpp(ours: Path, oracle: Path) -> dict[str, str]:
    mine, theirs = _tensors(ours), _tensors(oracle)
    assert mine.keys() == theirs.keys()
    differing = [f"{n}: ours {mine[n][:2]}, llama.cpp {theirs[n][:2]}" for n in theirs if mine[n] != theirs[n]]
    assert not differing, differing
    assert _metadata(ours) == _metadata(oracle)  # general.file_type included
    return {name: value[0] for name, value in theirs.items()}


@pytest.mark.parametrize(("model", "quant"), [
    ("llama12", "Q4_K_M"), ("llama12", "Q5_K_M"), ("llama12", "Q6_K"), ("llama_odd", "Q4_K_M"),
    ("qwen2_tied", "Q4_K_M"), ("qwen2_tied", "Q5_K_M"), ("qwen2_tied", "Q6_K"), ("qwen2_tied", "Q4_0"),
    ("qwen2_narrow", "Q4_K_M"), ("qwen2_narrow", "Q4_0"), ("phi3", "Q4_K_M"),
])
def test_direct_k_quant_is_byte_identical_to_llama_cpp_quantize(models: dict[str, Path], model: str, quant: str,
                                                                tmp_path: Path) -> None:
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.kquant import direct_quant_available

    if not direct_quant_available(quant):
        pytest.skip("this llama-cpp-python build has no ggml_quantize_chunk (exports use llama.cpp's quantizer)")
    ours = convert_to_gguf(models[model], tmp_path / f"direct-{quant}.gguf", quant)
    types = _assert_same_as_llama_cpp(ours, _llama_cpp_quantize(models[model], quant, tmp_path))
    if model == "llama12" and quant in ("Q4_K_M", "Q5_K_M"):  # the mix, not one type: more bits on some layers
        v_types = [types[f"blk.{i}.attn_v.weight"] for i in range(12)]
        assert "Q6_K" in v_types and len(set(v_types)) == 2
        assert types["output.weight"] == "Q6_K"
    if model == "llama_odd":
        assert types["blk.0.ffn_down.weight"] == "F16"
    if model == "qwen2_tied":
        assert "output.weight" not in types and types["token_embd.weight"] == "Q8_0"
    if model == "qwen2_narrow":
        assert types["token_embd.weight"] == types["blk.0.attn_q.weight"] == "F16"


def test_direct_q4_k_m_generates_what_llama_cpp_quantize_generates(models: dict[str, Path], tmp_path: Path) -> None:
    import llama_cpp
    from ftwiz.core.export.pipeline import export_model

    model = models["llama12"]
    result = export_model(model, ["Q4_K_M"], out=tmp_path / "out")
    ours = Path(result.gguf_paths[0])
    assert sorted(p.name for p in ours.parent.iterdir()) == [ours.name]  # no F16 intermediate, no leftovers
    oracle = _llama_cpp_quantize(model, "Q4_K_M", tmp_path)

    def greedy(path: Path) -> list[int]:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_threads=2, verbose=False, seed=0)
        try:
            prompt = llm.tokenize(b"The quick brown fox")
            out = llm.create_completion(prompt, max_tokens=12, temperature=0.0, top_k=1)
            return prompt + llm.tokenize(out["choices"][0]["text"].encode(), add_bos=False, special=True)
        finally:
            llm.close()

    tokens = greedy(ours)
    assert len(tokens) > 5 and tokens == greedy(oracle)


def test_without_ggml_quantizer_the_export_falls_back_to_llama_cpp(models: dict[str, Path], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A llama-cpp-python build without ggml_quantize_chunk: the F16 intermediate + quantizer path, same bytes."""
    import dataclasses

    from ftwiz.core.export import ggml_kernels
    from ftwiz.core.export.kquant import direct_quant_available
    from ftwiz.core.export.pipeline import export_model

    found = ggml_kernels.kernels()
    monkeypatch.setattr(ggml_kernels, "kernels",
                        lambda: dataclasses.replace(found, quantize_chunk=None) if found else None)
    assert not direct_quant_available("Q4_K_M")
    path = Path(export_model(models["llama_odd"], ["Q4_K_M"], out=tmp_path / "out").gguf_paths[0])
    monkeypatch.undo()
    if direct_quant_available("Q4_K_M"):
        from ftwiz.core.export.convert import convert_to_gguf

        _assert_same_as_llama_cpp(convert_to_gguf(models["llama_odd"], tmp_path / "direct.gguf", "Q4_K_M"), path)



@pytest.mark.parametrize("model", ["llama12", "llama_odd", "qwen2_tied"])
def test_the_export_says_how_many_tensors_got_another_type_than_the_k_quant(models: dict[str, Path], model: str,
                                                                           tmp_path: Path) -> None:
    """A Q4_K_M export of a model whose rows are not whole 256-value blocks (Qwen2.5-0.5B: 896) is mostly Q5_0,
    larger than a Q4_K_M; llama.cpp's quantizer warns about each such tensor, ftwiz said nothing. Oracle: the
    types llama.cpp's quantizer gives the same model."""
    import re

    from ftwiz.core.export.pipeline import export_model

    oracle = _tensors(_llama_cpp_quantize(models[model], "Q4_K_M", tmp_path))
    other = {name: t for name, (t, shape, _) in oracle.items()
             if len(shape) > 1 and t not in ("Q4_K", "Q5_K", "Q6_K")}
    notes = export_model(models[model], ["Q4_K_M"], out=tmp_path / "out").notes
    if not other:
        assert notes == []
        return
    assert len(notes) == 1
    counted = {used: int(n) for n, used in re.findall(r"(\d+) as (\w+) instead of", notes[0])}
    assert counted == {t: list(other.values()).count(t) for t in set(other.values())}, notes[0]
    assert notes[0].startswith(f"Q4_K_M: {len(other)} of ") and "llama.cpp's quantizer does" in notes[0]
