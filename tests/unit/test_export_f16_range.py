"""Weights beyond float16's range (|x| > 65504 after rounding) are written as ±inf by an F16 export, as
llama.cpp's converter writes them; ``ftwiz export`` now says which tensors and what to export instead.

Oracle: numpy's ``astype(np.float16)`` of the source values (widened to float32): a value counts when it is
finite and the cast makes it inf. The file's tensor bytes are compared with the same cast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from planted_model import model_with

# (tensor, flat index, value): bfloat16 stores 65504, 65519 and 65520 as 65536 (inf as float16); 65280 is its
# largest value below, written as it is; an inf already in the checkpoint is not the export's doing
BF16_VALUES = [("model.layers.0.mlp.down_proj.weight", 5, 70000.0), ("model.layers.0.mlp.down_proj.weight", 9, -65504.0),
               ("model.layers.1.self_attn.o_proj.weight", 3, 65519.0), ("model.layers.1.mlp.gate_proj.weight", 7, 65520.0),
               ("model.layers.0.self_attn.q_proj.weight", 1, 65280.0), ("model.layers.1.mlp.up_proj.weight", 2, np.inf)]
# float32 keeps the rounding boundary: 65504 and 65519.996 round to 65504, 65520 ties to 65536 (inf)
F32_VALUES = [("model.layers.0.mlp.down_proj.weight", 5, 65504.0), ("model.layers.0.mlp.down_proj.weight", 6, 65519.996),
              ("model.layers.1.self_attn.o_proj.weight", 3, 65520.0), ("model.layers.1.self_attn.o_proj.weight", 4, -7e4),
              ("model.layers.1.mlp.up_proj.weight", 2, float("nan"))]


def _overflows(values: np.ndarray) -> int:
    """The oracle: finite values numpy's float16 cast turns into ±inf."""
    wide = values.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return int(np.count_nonzero(np.isfinite(wide) & np.isinf(wide.astype(np.float16))))


def _expected(tensors: dict) -> dict[str, int]:
    return {name: n for name, t in tensors.items() if t.ndim == 2 and (n := _overflows(t))}


def _named(note: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r"(model\.[\w.]+) \((\d+) values?\)", note)}


def test_count_matches_numpy_for_every_bfloat16_and_the_float32_boundary() -> None:
    from ftwiz.core.export.f16_range import count_overflows

    bits = np.arange(65536, dtype=np.uint16)
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    with np.errstate(over="ignore"):
        oracle = np.isfinite(widened) & np.isinf(widened.astype(np.float16))
    assert [count_overflows(bits[i:i + 1], "BF16") for i in range(65536)] == oracle.astype(int).tolist()
    near = np.arange(0x477FE000, 0x47802000, dtype=np.uint32)  # 65504 ... 65536 and a little beyond
    values = np.concatenate([near, near | 0x80000000, [0x7F800000, 0x7FC00000]]).view(np.float32)
    assert count_overflows(values, "F32") == _overflows(values) > 0
    assert [count_overflows(np.float32([v]), "F32") for v in (65504, 65519.996, 65520, 7e4)] == [0, 0, 1, 1]


@pytest.mark.parametrize("dtype, values", [("bfloat16", BF16_VALUES), ("float32", F32_VALUES)])
@pytest.mark.parametrize("flag", [True, False], ids=["overflow-flag", "counted"])
def test_f16_export_names_the_tensors_that_became_inf(tiny_qwen2: Path, tmp_path: Path, monkeypatch, dtype: str,
                                                      values: list, flag: bool) -> None:
    import gguf
    from ftwiz.core.export import f16_range
    from ftwiz.core.export.pipeline import export_model

    if not flag:  # a CPU or build whose overflow flag cannot be trusted: every piece is counted
        monkeypatch.setattr(f16_range, "overflow_flag_works", lambda: False)
    model, tensors = model_with(tiny_qwen2, tmp_path / "model", values, dtype)
    expected = _expected(tensors)
    assert expected, "some planted value must overflow"
    result = export_model(model, ["F16"], out=tmp_path / "m.gguf")
    (note,) = result.notes
    assert note.startswith(f"F16: {sum(expected.values())} weight value")
    assert _named(note) == expected
    assert "--quant BF16" in note and "--quant Q8_0" in note
    # the file is what llama.cpp's converter writes: every value cast to float16, the infs included
    reader = gguf.GGUFReader(result.gguf_paths[0])
    written = {t.name: np.array(t.data) for t in reader.tensors}
    for name, gguf_name in (("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight"),
                            ("model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight")):
        with np.errstate(over="ignore"):
            assert written[gguf_name].tobytes() == tensors[name].astype(np.float16).tobytes()


def test_plain_model_and_the_suggested_types_export_without_a_warning(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.pipeline import export_model

    assert export_model(tiny_qwen2, ["F16"], out=tmp_path / "plain.gguf").notes == []
    model, _ = model_with(tiny_qwen2, tmp_path / "model", BF16_VALUES, "bfloat16")
    result = export_model(model, ["BF16", "Q8_0"], out=tmp_path / "out")
    assert result.notes == []  # BF16 keeps 70000; Q8_0 quantizes from float32 (its scale 70000/127 fits)


def test_k_quant_warns_for_its_float16_step_and_json_carries_it(tiny_qwen2: Path, tmp_path: Path, capsys) -> None:
    from ftwiz.core.cli import main
    from ftwiz.core.export.kquant import direct_quant_available

    if not direct_quant_available("Q4_K_M"):
        pytest.skip("this llama-cpp-python build has no ggml_quantize_chunk (K-quants go through llama.cpp)")
    model, tensors = model_with(tiny_qwen2, tmp_path / "model", BF16_VALUES, "bfloat16")
    assert main(["export", str(model), "--quant", "Q4_K_M", "--out", str(tmp_path / "q.gguf"), "--json"]) == 0
    notes = [n for n in json.loads(capsys.readouterr().out)["notes"] if "float16's range" in n]
    (note,) = notes
    assert note.startswith("Q4_K_M: ") and "float16 step" in note
    assert _named(note) == _expected(tensors)


def test_llama_q_and_k_rows_permuted_for_gguf_are_checked_too(tiny_llama: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.pipeline import export_model

    planted = [("model.layers.0.self_attn.q_proj.weight", 17, 1e5), ("model.layers.1.self_attn.k_proj.weight", 3, -1e6)]
    model, tensors = model_with(tiny_llama, tmp_path / "model", planted, "bfloat16")
    (note,) = export_model(model, ["F16"], out=tmp_path / "m.gguf").notes
    assert _named(note) == _expected(tensors) == {name: 1 for name, _, _ in planted}


def test_a_float32_models_note_offers_f32_as_the_lossless_type(tiny_qwen2: Path, tmp_path: Path) -> None:
    """BF16 keeps a bfloat16 checkpoint's values, not a float32 one's: the note called BF16 lossless for both."""
    import gguf
    from ftwiz.core.export.pipeline import export_model

    model, tensors = model_with(tiny_qwen2, tmp_path / "model", F32_VALUES, "float32")
    (note,) = export_model(model, ["F16"], out=tmp_path / "m.gguf").notes
    lossless = re.findall(r"--quant (\w+) \(lossless\)", note)
    assert lossless == ["F32"] and "--quant BF16" in note and "--quant Q8_0" in note
    result = export_model(model, ["BF16", "F32"], out=tmp_path / "out")
    written = {Path(path).name.rsplit("-", 1)[-1]: {t.name: np.array(t.data) for t in gguf.GGUFReader(path).tensors}
               for path in result.gguf_paths}
    source = tensors["model.layers.1.self_attn.o_proj.weight"]
    assert np.array_equal(written["F32.gguf"]["blk.1.attn_output.weight"].reshape(source.shape), source)
    bf16 = written["BF16.gguf"]["blk.1.attn_output.weight"].view(np.uint16).astype(np.uint32) << 16
    assert not np.array_equal(bf16.view(np.float32).reshape(source.shape), source)  # BF16 is not lossless here


def test_llama_cpps_quantizer_refusing_the_inf_says_why(tiny_qwen2: Path, tmp_path: Path) -> None:
    """Where K-quants go through llama.cpp's quantizer (no direct ggml quantizer in this build), it refuses an F16
    GGUF holding inf ("found inf value"); the error's fix said to check the source was written by ftwiz export."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.quantize import quantize_gguf

    pytest.importorskip("llama_cpp")
    model, tensors = model_with(tiny_qwen2, tmp_path / "model", BF16_VALUES, "bfloat16")
    assert _expected(tensors)  # numpy's float16 cast makes some of them inf
    f16 = convert_to_gguf(model, tmp_path / "m-F16.gguf", "F16", notes=[])
    with pytest.raises(FtwizError) as refused:
        quantize_gguf(f16, tmp_path / "m-Q4_K_M.gguf", "Q4_K_M")
    assert "inf value" in refused.value.what  # llama.cpp's own reason, quoted
    assert "float16's range" in refused.value.fix and "--quant BF16" in refused.value.fix
    plain = convert_to_gguf(tiny_qwen2, tmp_path / "plain-F16.gguf", "F16")
    assert quantize_gguf(plain, tmp_path / "plain-Q4_K_M.gguf", "Q4_K_M").is_file()  # the path itself works
