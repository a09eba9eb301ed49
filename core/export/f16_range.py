"""Finding the weights an F16 write turns into ±inf: bfloat16/float32 values beyond float16's range.

float16 tops out at 65504; bfloat16 and float32 go to 3.4e38. A finite value that rounds (to nearest even, as
numpy's ``astype(float16)``, ggml's kernels and llama.cpp's converter all round) above 65504 is written as ±inf,
and llama.cpp then computes inf/NaN from every row or column that uses it. The file stays what llama.cpp's
converter writes; :func:`overflow_note` tells the user which tensors hold such values and what to export instead.

Where the magnitude bits start overflowing (checked against numpy by tests/unit/test_export_f16_range.py):

- float32: 65520.0 (0x477FF000) is half-way between 65504 and 65536 and ties to the even 65536, i.e. inf;
  65519.996 rounds down to 65504;
- bfloat16: 65536 (0x4780); its largest value below, 65280 (0x477F), is representable in float16. Nothing in
  between, so a bfloat16 model's "65504" (stored as 65536) overflows.

Why a note and not a refusal: the values are found while the data section is written (looking first would
cost a second read of the model, in the benchmarked F16 export), the file is byte for byte what llama.cpp's
converter writes, and a value in a row nothing uses (an unused token's embedding) does no harm; the note names
the tensors and the types that keep the values (BF16, Q8_0).

Source values that already are inf or NaN are not counted: they are the checkpoint's own (a diverged training),
an export to any type keeps them, and no export choice fixes them.

Cost: the common bfloat16 -> F16 conversion runs in ggml's kernels, whose float32 -> float16 step raises the
CPU's floating-point *overflow* flag exactly for a finite value that becomes inf (F16C's ``vcvtps2ph``; the scalar
fallback's ``|x| * 2^112`` overflows from 65536 on, which is exact for bfloat16 inputs). The flag is sticky and
per thread: cleared before a piece, read after it (two C calls per 32 MiB), and only a piece that raised it is
counted exactly. :func:`overflow_flag_works` checks that on this CPU and build once; where it does not hold (or the
flag cannot be read), and for float32 sources (the scalar fallback misses 65520-65535), pieces are counted with
:func:`count_overflows` (two read-only reductions per block, exact count only for a block that fails them).
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import Any

BF16_LIMIT = 0x4780  # bfloat16 magnitude bits from here up to inf (0x7F80) become ±inf as float16
F32_LIMIT = 0x477FF000  # float32 magnitude bits (65520.0) from here up to inf (0x7F800000) become ±inf
_FINITE_END = {"BF16": 0x7F80, "F32": 0x7F800000}
_LIMIT = {"BF16": BF16_LIMIT, "F32": F32_LIMIT}
_UNSIGNED = {"BF16": ("uint16", "int16", 0x8000), "F32": ("uint32", "int32", 0x80000000)}  # numpy's views, sign bit
_COUNT_CHUNK = 1 << 20  # elements per exact count: bounded temporaries
# <fenv.h> FE_OVERFLOW: x86's MXCSR/x87 bit and Arm's FPSR bit, as glibc and macOS number them
_FE_OVERFLOW = {"x86_64": 0x08, "amd64": 0x08, "aarch64": 0x04, "arm64": 0x04}


def watched(plan: Any) -> bool:
    """Whether ``plan`` (a ``convert.TensorPlan``) writes bfloat16/float32 source values as float16: an F16
    tensor, or a quantized one made from the float16 rounding (``via_f16``, K-quants, as llama.cpp's quantizer
    reads an F16 GGUF)."""
    import gguf

    return (plan.ref is not None and plan.ref.dtype in _LIMIT
            and (plan.qtype == gguf.GGMLQuantizationType.F16 or getattr(plan, "via_f16", False)))


def count_overflows(values: Any, src_dtype: str) -> int:
    """How many finite values of ``values`` (float32, or bfloat16 as uint16 bits) become ±inf as float16.

    Exact, element for element the same as ``np.isfinite(x) & np.isinf(x.astype(np.float16))``. Each chunk is
    first checked with two read-only reductions: the signed view's maximum is the largest positive magnitude,
    the unsigned view's maximum the largest negative one (sign bit set); only a chunk reaching the limit is counted.
    """
    import numpy as np

    unsigned, signed, sign = _UNSIGNED[src_dtype]
    limit, end = _LIMIT[src_dtype], _FINITE_END[src_dtype]
    flat = np.ascontiguousarray(values).reshape(-1).view(unsigned)
    found = 0
    for start in range(0, flat.size, _COUNT_CHUNK):
        bits = flat[start: start + _COUNT_CHUNK]
        if bits.size == 0 or (int(bits.view(signed).max()) < limit and int(bits.max()) < sign | limit):
            continue
        magnitude = bits & np.array(sign - 1, dtype=unsigned)
        found += int(np.count_nonzero((magnitude >= limit) & (magnitude < end)))
    return found


@cache
def _fenv() -> tuple[Any, Any, int] | None:
    """(feclearexcept, fetestexcept, FE_OVERFLOW) from the C library, or None where they cannot be had."""
    import ctypes

    flag = _FE_OVERFLOW.get(os.uname().machine.lower()) if hasattr(os, "uname") else None  # Windows: counted
    if flag is None:
        return None
    for name in (None, "libm.so.6", "libSystem.B.dylib"):  # the process's own symbols first (numpy loaded libm)
        try:
            lib = ctypes.CDLL(name)
            clear, test = lib.feclearexcept, lib.fetestexcept
        except (OSError, AttributeError, TypeError):
            continue
        clear.argtypes = test.argtypes = [ctypes.c_int]
        clear.restype = test.restype = ctypes.c_int
        return clear, test, flag
    return None


def clear_overflow_flag() -> None:
    """Clear this thread's floating-point overflow flag (a no-op where it cannot be read)."""
    env = _fenv()
    if env is not None:
        env[0](env[2])


def overflow_flag_raised() -> bool:
    """Whether this thread's overflow flag was raised since :func:`clear_overflow_flag` (True where it cannot
    be read: the caller then counts)."""
    env = _fenv()
    return env is None or bool(env[1](env[2]))


@cache
def overflow_flag_works() -> bool:
    """Whether ggml's bfloat16 -> float16 conversion raises the overflow flag exactly when numpy's cast makes a
    finite value inf, on this CPU and build: boundary patterns at the first, middle and last positions of
    arrays of several lengths (SIMD bodies and scalar tails)."""
    import numpy as np
    from ftwiz.core.export import ggml_kernels

    kernels = ggml_kernels.kernels()
    if kernels is None or _fenv() is None:
        return False
    patterns = np.array([0x477F, 0x4780, 0xC77F, 0xC780, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0x3F80], np.uint16)
    src, out = np.zeros(40, dtype=np.uint16), np.empty(40, dtype=np.uint16)
    at, to = src.ctypes.data, out.ctypes.data  # once: numpy's .ctypes costs microseconds per access
    for pattern in patterns:
        expected = count_overflows(pattern, "BF16") > 0
        for length in (1, 7, 40):  # scalar only; 4-wide body and scalar tail; 8/16-wide bodies
            for position in (0, length - 1):
                src[:] = 0
                src[position] = pattern
                clear_overflow_flag()
                ggml_kernels.bf16_to_f16_at(at, to, length, kernels)
                if overflow_flag_raised() != expected:
                    return False
    return True


class OverflowLog:
    """Overflowing values per tensor (``counts``) and Q8_0 blocks whose float16 scale overflowed per tensor
    (``blocks``, :mod:`ftwiz.core.export.q8_range`), filled by the export's worker threads."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.blocks: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, count: int, *, blocks: bool = False) -> None:
        if count:
            into = self.blocks if blocks else self.counts
            with self._lock:
                into[name] = into.get(name, 0) + count


def overflow_note(counts: dict[str, int], out_type: str, shown: int = 3, lossless: str = "BF16") -> str | None:
    """One line for the user when tensors (safetensors names -> values) overflowed float16 in a ``out_type``
    export; None when none did. Names the ``shown`` tensors with the most, the total and what to export instead;
    ``lossless``: the type that keeps those tensors' values exactly (BF16 for bfloat16 sources, F32 when one of
    them is float32: BF16 drops 16 of its mantissa bits)."""
    if not counts:
        return None
    out_type = out_type.upper()
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(f"{name} ({n} value{'s' if n != 1 else ''})" for name, n in top[:shown])
    more = f" and {len(top) - shown} more" if len(top) > shown else ""
    total = sum(counts.values())
    how = ("are written as ±inf" if out_type == "F16" else
           f"become ±inf in the float16 step {out_type} is made from (as llama.cpp's quantizer works from an F16 "
           f"GGUF), so their blocks are ruined")
    choices = [f"--quant {q}{' (lossless)' if q == lossless else ''}"
               for q in dict.fromkeys((lossless, "BF16", "Q8_0")) if q != out_type]
    instead = ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]
    return (f"{out_type}: {total} weight value{'s' if total != 1 else ''} in {len(top)} tensor"
            f"{'s' if len(top) != 1 else ''} exceed float16's range (±65504) and {how}: {listed}{more}. llama.cpp "
            f"computes inf/NaN from them (garbage output), as it would from its own converter's file. Export with "
            f"{instead} instead")
