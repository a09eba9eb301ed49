"""Finding the Q8_0 blocks whose float16 scale overflows: a block holding a weight of 8.32 million or more.

Q8_0 stores each block of 32 weights as 32 int8 values and one float16 scale ``d = max|x| / 127`` (a float32
division, then rounded to nearest even as float16: ggml's ``quantize_row_q8_0_ref`` and gguf-py's numpy Q8_0
alike). From ``max|x| = 8321040`` (65520 * 127) ``d`` rounds past 65504 and is written as inf; llama.cpp then
reads every weight of the block as ±inf (NaN for a zero), and computes inf/NaN from every row that uses it.
The bytes stay what llama.cpp's converter writes; :func:`scale_overflow_note` tells the user which tensors hold
such blocks and what to export instead, as :mod:`ftwiz.core.export.f16_range` does for an F16 export.

The limits, checked against gguf-py's quantizer by tests/unit/test_export_q8_range.py:

- float32: 8321040.0 (0x4AFDF020) divides to exactly 65520.0, which ties to the even 65536, i.e. inf; the
  float32 just below gives 65519.996, written as 65504;
- bfloat16: 8323072 (0x4AFE) is its first value at or above that; 8290304 (0x4AFD), the one below, fits.

Only Q8_0 tensors quantized straight from bfloat16/float32 are looked at: a K-quant export's Q8_0 (and Q4_0,
Q5_0, K-quant) tensors are made from the float16-rounded values, at most 65504, whose scales all fit (an inf
there is counted by the F16 step's note), and float16 sources cannot reach the limit.

Cost: the quantizer's own output is looked at first: :func:`scale_overflowed` reads one byte of the scale of
each 34-byte block just written (one byte per 32 weights, still in cache), and only rows where a scale is inf or
NaN are counted exactly from the source by :func:`count_scale_overflows`. Two whole reductions of the source per
block of rows instead (35 us per 256 KiB) cost the bench model's Q8_0 export about 0.15 s of CPU (of ~2 s).
"""

from __future__ import annotations

from typing import Any

Q8_BLOCK = 32  # weights per Q8_0 block (one float16 scale each)
F32_SCALE_LIMIT = 0x4AFDF020  # 8321040.0: float32(x / 127) is 65520.0, which float16 rounds up to inf
BF16_SCALE_LIMIT = 0x4AFE  # 8323072: bfloat16's first value at or above 8321040 (0x4AFD, 8290304, fits)
_LIMIT = {"BF16": BF16_SCALE_LIMIT, "F32": F32_SCALE_LIMIT}
_FINITE_END = {"BF16": 0x7F80, "F32": 0x7F800000}  # from here the magnitude is inf or NaN: the source's own
_UNSIGNED = {"BF16": ("uint16", "int16", 0x8000), "F32": ("uint32", "int32", 0x80000000)}  # numpy's views, sign bit


def scale_watched(plan: Any) -> bool:
    """Whether ``plan`` (a ``convert.TensorPlan``) is quantized to Q8_0 straight from bfloat16/float32 values
    (not from their float16 rounding, as a K-quant export's Q8_0 tensors are: ``via_f16``)."""
    import gguf

    return (plan.ref is not None and plan.ref.dtype in _LIMIT and plan.qtype == gguf.GGMLQuantizationType.Q8_0
            and not getattr(plan, "via_f16", False))


def scale_overflowed(data: Any) -> bool:
    """Whether Q8_0 ``data`` (the quantizer's uint8 array for whole rows: per 34-byte block a little-endian float16
    scale, then 32 int8) holds a scale of inf or NaN. Reads one byte per block, the scale's high byte, through a
    strided view: a scale is ``max|x| / 127``, never negative, so a high byte from 0x7C up (float16 exponent all
    ones) is inf or NaN (about 11 us per 256 KiB of bfloat16 rows, against 1.3 ms to quantize them)."""
    return data.size > 0 and int(data.reshape(-1, Q8_BLOCK + 2)[:, 1].max()) >= 0x7C  # uint8, C order


def count_scale_overflows(rows: Any, src_dtype: str) -> int:
    """How many Q8_0 blocks of ``rows`` (whole rows of whole 32-weight blocks: float32, or bfloat16 as uint16
    bits) get a float16 scale of inf: blocks whose largest magnitude is finite and at least the limit.

    A block holding an inf or NaN of the source is not counted (its scale is inf/NaN in any export, the
    checkpoint's own). The whole rows are first checked with two reductions; the count runs only past them.
    """
    import numpy as np

    unsigned, signed, sign = _UNSIGNED[src_dtype]
    limit, end = _LIMIT[src_dtype], _FINITE_END[src_dtype]
    bits = np.ascontiguousarray(rows).reshape(-1).view(unsigned)
    if bits.size == 0 or (int(bits.view(signed).max()) < limit and int(bits.max()) < sign | limit):
        return 0
    largest = (bits & np.array(sign - 1, dtype=unsigned)).reshape(-1, Q8_BLOCK).max(axis=1)
    return int(np.count_nonzero((largest >= limit) & (largest < end)))


def scale_overflow_note(counts: dict[str, int], shown: int = 3, lossless: str = "BF16") -> str | None:
    """One line for the user when tensors (safetensors names -> blocks) got an inf Q8_0 scale; None when none
    did. Names the ``shown`` tensors with the most, the total and what to export instead; ``lossless``: the type
    that keeps those tensors' values exactly (BF16 for bfloat16 sources, F32 when one of them is float32)."""
    if not counts:
        return None
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(f"{name} ({n} block{'s' if n != 1 else ''})" for name, n in top[:shown])
    more = f" and {len(top) - shown} more" if len(top) > shown else ""
    total = sum(counts.values())
    other = "F32" if lossless == "BF16" else "BF16"
    return (f"Q8_0: {total} block{'s' if total != 1 else ''} of 32 weights in {len(top)} tensor"
            f"{'s' if len(top) != 1 else ''} hold a value of 8.32 million or more (65520 x 127), so their float16 "
            f"scale is written as inf and every weight in them reads back as ±inf or NaN: {listed}{more}. llama.cpp "
            f"computes inf/NaN from them (garbage output), as it would from its own converter's file. Export with "
            f"--quant {lossless} (lossless) or --quant {other} instead")
