"""Source arrays (numpy; bfloat16 as its raw uint16 bits) to the bytes a GGUF tensor stores.

numpy has no bfloat16, and its float32 -> float16 cast is slow (about 4 ns per element here). The float16
casts therefore use ggml's vectorised kernels from the llama-cpp-python install when it has them
(:mod:`ftwiz.core.export.ggml_kernels`, about 0.55 ns per element). Without them, bfloat16 -> float16 is a
lookup in a 128 KiB table (a bfloat16 has only 65536 bit patterns; the table stays in the CPU's cache),
built once with numpy's own rounding: exact for every value, one pass, 1.1 to 1.7 ns per element. Both
release the GIL, so worker threads convert tensors side by side, and neither needs torch (fast start).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_TABLE = None


def bf16_bits_to_f32(bits):
    out = np.empty(bits.shape, dtype=np.uint32)
    np.left_shift(bits, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


def _table():
    """float16 bits for every bfloat16 bit pattern (overflow to inf, subnormals rounded as numpy does)."""
    global _TABLE
    if _TABLE is None:
        with np.errstate(over="ignore"):
            _TABLE = bf16_bits_to_f32(np.arange(65536, dtype=np.uint16)).astype(np.float16).view(np.uint16)
    return _TABLE


def bf16_bits_to_f16(bits, chunk: int = 1 << 16, out=None, *, use_ggml: bool = True):
    """bfloat16 bits -> float16 array, identical to widening to float32 and rounding to float16.

    The numpy path works in chunks of 64K elements: ``np.take`` widens its indices to intp, and a small
    chunk keeps that temporary in cache (and the memory of a thread bounded).
    """
    from ftwiz.core.export import ggml_kernels

    flat = np.ascontiguousarray(bits).reshape(-1)
    out = np.empty(flat.shape, dtype=np.uint16) if out is None else out.reshape(-1)
    k = ggml_kernels.kernels() if use_ggml else None
    if k is not None:
        ggml_kernels.bf16_to_f16(flat, out, k)
        return out.view(np.float16).reshape(bits.shape)
    table = _table()
    for start in range(0, flat.size, chunk):
        stop = min(start + chunk, flat.size)
        np.take(table, flat[start:stop], out=out[start:stop], mode="clip")  # never clips: 65536 entries
    return out.view(np.float16).reshape(bits.shape)


def f32_to_f16(array, out=None, *, use_ggml: bool = True):
    """float32 -> float16 (round to nearest even, overflow to inf), with ggml's kernel when available."""
    from ftwiz.core.export import ggml_kernels

    k = ggml_kernels.kernels() if use_ggml else None
    if k is None:
        with np.errstate(over="ignore"):
            return array.astype(np.float16)
    flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
    out = np.empty(flat.shape, dtype=np.uint16) if out is None else out.reshape(-1)
    ggml_kernels.f32_to_f16(flat, out, k)
    return out.view(np.float16).reshape(array.shape)


def as_f32(array, src_dtype: str):
    return bf16_bits_to_f32(array) if src_dtype == "BF16" else array.astype(np.float32)


def to_gguf_array(array, src_dtype: str, qtype: Any, out=None):
    """Rows of a source tensor (already in GGUF row order) as the array whose bytes GGUF stores.

    ``out`` (uint16, at least ``array.size`` long) receives the bfloat16 -> float16 case, the common one
    for today's models, so a worker converts into one reused buffer instead of a fresh array per piece.
    """
    import gguf

    q = gguf.GGMLQuantizationType
    if qtype == q.F32:
        return as_f32(array, src_dtype)
    if qtype == q.F16:
        if src_dtype == "F16":
            return array
        buffer = None if out is None else out[: array.size]
        if src_dtype == "BF16":
            return bf16_bits_to_f16(array, out=buffer)
        return f32_to_f16(array, out=buffer)
    if qtype == q.BF16 and src_dtype == "BF16":
        return array
    return quantize(as_f32(array, src_dtype), qtype)


def quantize(rows, qtype: Any, *, use_ggml: bool = True):
    """float32 rows -> GGML blocks (Q8_0 here): ggml's C quantizer when available, else gguf's numpy one."""
    import gguf
    from ftwiz.core.export import ggml_kernels

    k = ggml_kernels.kernels() if use_ggml and rows.ndim >= 2 and qtype == gguf.GGMLQuantizationType.Q8_0 else None
    if k is not None:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        flat = np.ascontiguousarray(rows, dtype=np.float32)
        data = ggml_kernels.quantize_rows(flat, int(qtype), flat.size // block * size, k)
        if data is not None:
            return data.reshape(*rows.shape[:-1], rows.shape[-1] // block * size)
    return gguf.quants.quantize(rows, qtype)
