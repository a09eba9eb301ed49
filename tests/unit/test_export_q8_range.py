"""A Q8_0 block holding a weight of 8.32 million or more gets a float16 scale of inf (max|x| / 127 > 65504), as
llama.cpp's converter writes it; ``ftwiz export --quant Q8_0`` now says which tensors and how many blocks.

Oracle: gguf-py's own ``gguf.quants.quantize(..., Q8_0)`` (what llama.cpp's convert_hf_to_gguf.py calls) of the
source values widened to float32: a block counts when the scale it writes is inf and the block's values are
finite. The file's tensor bytes are compared with the same call.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from planted_model import model_with

# (tensor, flat index, value): bfloat16 stores 8.3e6 as 8290304 (scale fits) and 8321040 as 8323072 (inf);
# two blocks of down_proj (the third value shares the first's block), one of o_proj; an inf is the checkpoint's
BF16_VALUES = [("model.layers.0.mlp.down_proj.weight", 5, 9e6), ("model.layers.0.mlp.down_proj.weight", 40, -8.33e6),
               ("model.layers.0.mlp.down_proj.weight", 9, 2e7), ("model.layers.1.self_attn.o_proj.weight", 3, 8321040.0),
               ("model.layers.1.mlp.gate_proj.weight", 7, 8.3e6), ("model.layers.1.mlp.up_proj.weight", 2, np.inf)]
# float32 keeps the boundary: 8321039.5 divides to 65519.996 (written as 65504), 8321040 to 65520 (inf)
F32_VALUES = [("model.layers.0.mlp.down_proj.weight", 5, 8321039.5), ("model.layers.1.self_attn.o_proj.weight", 3,
                                                                        -8321040.0)]


def _inf_scales(values: np.ndarray) -> int:
    """The oracle: blocks of finite values whose scale gguf-py's Q8_0 quantizer writes as inf."""
    import gguf

    rows = values.astype(np.float32).reshape(-1, 32)
    with np.errstate(over="ignore", invalid="ignore"):
        data = gguf.quants.quantize(rows, gguf.GGMLQuantizationType.Q8_0)
    scales = np.ascontiguousarray(data.view(np.uint8).reshape(-1, 34)[:, :2]).view(np.float16).ravel()
    return int(np.count_nonzero(np.isinf(scales) & np.isfinite(rows).all(axis=1)))


def _named(note: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r"(model\.[\w.]+) \((\d+) blocks?\)", note)}


def test_count_matches_gguf_py_for_every_bfloat16_and_the_float32_boundary() -> None:
    import gguf
    from ftwiz.core.export.q8_range import count_scale_overflows, scale_overflowed

    bits = np.zeros((65536, 32), dtype=np.uint16)
    bits[:, 7] = np.arange(65536, dtype=np.uint16)  # every bfloat16 value as a block's largest
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    assert count_scale_overflows(bits, "BF16") == _inf_scales(widened) > 0
    near = np.arange(0x4AFDE000, 0x4AFE2000, dtype=np.uint32).view(np.float32)  # 8.3208e6 ... 8.3216e6
    blocks = np.zeros((near.size, 32), dtype=np.float32)
    blocks[:, 31] = near
    blocks[1::2, 31] *= -1
    assert count_scale_overflows(blocks, "F32") == _inf_scales(blocks) > 0
    one = np.zeros((1, 32), dtype=np.float32)
    assert [count_scale_overflows(one + np.float32(v), "F32") for v in (8321039.5, 8321040, -9e6, np.inf)] == [0, 1, 1, 0]
    # the export looks at the written scales first: gguf-py's bytes with and without an inf scale
    with np.errstate(over="ignore"):
        assert [scale_overflowed(gguf.quants.quantize(np.tile(one + np.float32(v), (3, 1)), gguf.GGMLQuantizationType.Q8_0))
                for v in (8321039.5, 8321040, -9e6)] == [False, True, True]


def test_q8_0_export_names_the_tensors_whose_scale_became_inf(tiny_qwen2: Path, tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.pipeline import export_model

    model, tensors = model_with(tiny_qwen2, tmp_path / "model", BF16_VALUES, "bfloat16")
    expected = {name: n for name, t in tensors.items() if t.ndim == 2 and (n := _inf_scales(t))}
    assert expected == {"model.layers.0.mlp.down_proj.weight": 2, "model.layers.1.self_attn.o_proj.weight": 1}
    result = export_model(model, ["Q8_0"], out=tmp_path / "m.gguf")
    (note,) = result.notes
    assert note.startswith("Q8_0: 3 blocks of 32 weights in 2 tensors") and _named(note) == expected
    assert "--quant BF16 (lossless)" in note and "--quant F32" in note
    # the file is what llama.cpp's converter writes: gguf-py's Q8_0 of every tensor, the inf scales included
    written = {t.name: np.array(t.data) for t in gguf.GGUFReader(result.gguf_paths[0]).tensors}
    for name, gguf_name in (("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight"),
                            ("model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight")):
        with np.errstate(over="ignore", invalid="ignore"):
            oracle = gguf.quants.quantize(tensors[name], gguf.GGMLQuantizationType.Q8_0)
        assert written[gguf_name].tobytes() == oracle.tobytes()


def test_a_float32_model_at_the_boundary_and_a_plain_model(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.pipeline import export_model

    model, tensors = model_with(tiny_qwen2, tmp_path / "model", F32_VALUES, "float32")
    (note,) = export_model(model, ["Q8_0"], out=tmp_path / "m.gguf").notes
    assert _named(note) == {"model.layers.1.self_attn.o_proj.weight": 1}
    assert _inf_scales(tensors["model.layers.0.mlp.down_proj.weight"]) == 0
    assert "--quant F32 (lossless)" in note
    assert export_model(tiny_qwen2, ["Q8_0"], out=tmp_path / "plain.gguf").notes == []
