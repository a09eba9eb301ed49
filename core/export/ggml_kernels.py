"""ggml's own vectorised float conversions, borrowed from the llama-cpp-python install when it has them.

Why: converting bfloat16/float32 weights to float16 is the one step of an F16 export that is pure
arithmetic, and numpy has no vectorised float16 cast (about 4 ns per element for float32 -> float16, 1.1
to 1.7 ns for our bfloat16 table lookup). ggml-cpu, which llama-cpp-python ships as a shared library
next to libllama, exports ``ggml_cpu_bf16_to_fp32`` and ``ggml_cpu_fp32_to_fp16`` (F16C/NEON where
the CPU has them): about 0.55 ns per element for both steps, with identical results (round to nearest
even, overflow to inf). The library is opened with ctypes without importing llama_cpp (4 ms, no model
loader), and ctypes releases the GIL during the call, so worker threads convert side by side.

``ggml_quantize_chunk`` (in ggml-base, beside it) quantizes Q8_0 in C, bit-identical to the numpy code
in the ``gguf`` package (the bench model's Q8_0 export: 4.0 s -> 1.5 s).

Builds without these symbols (older llama.cpp, or a per-CPU-variant backend build) leave
:func:`kernels` returning None and the callers keep their numpy paths.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 1 << 16  # elements per call: the float32 staging buffer (256 KiB) stays in cache
_local = threading.local()


@dataclass(frozen=True)
class Kernels:
    bf16_to_f32: ctypes._CFuncPtr
    f32_to_f16: ctypes._CFuncPtr
    quantize_chunk: ctypes._CFuncPtr | None  # ggml_quantize_chunk from ggml-base: reference quantizers in C


def _library_name(stem: str) -> str:
    if sys.platform == "darwin":
        return f"lib{stem}.dylib"
    if sys.platform == "win32":
        return f"{stem}.dll"
    return f"lib{stem}.so"


def _quantize_chunk(lib_dir: Path):
    """``size_t ggml_quantize_chunk(type, const float *src, void *dst, start, nrows, n_per_row, imatrix)``."""
    try:
        func = ctypes.CDLL(str(lib_dir / _library_name("ggml-base"))).ggml_quantize_chunk
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                     ctypes.c_void_p]
    func.restype = ctypes.c_size_t
    return func


@cache
def kernels() -> Kernels | None:
    """The two conversion functions, or None when this llama-cpp-python build does not provide them."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib_dir = Path(next(iter(spec.submodule_search_locations))) / "lib"
    path = lib_dir / _library_name("ggml-cpu")
    if not path.is_file():
        return None
    try:
        lib = ctypes.CDLL(str(path))
        to_f32, to_f16 = lib.ggml_cpu_bf16_to_fp32, lib.ggml_cpu_fp32_to_fp16
    except (OSError, AttributeError) as exc:
        log.debug("ggml float conversions unavailable in %s: %s", path, exc)
        return None
    for func in (to_f32, to_f16):
        func.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        func.restype = None
    if hasattr(lib, "ggml_cpu_init"):  # fills ggml-cpu's lookup tables; idempotent
        lib.ggml_cpu_init()
    return Kernels(to_f32, to_f16, _quantize_chunk(lib_dir))


def bf16_to_f16(src, out, k: Kernels) -> None:
    """Contiguous uint16 bfloat16 bits -> contiguous uint16 float16 bits, through a float32 staging buffer."""
    bf16_to_f16_at(src.ctypes.data, out.ctypes.data, src.size, k)


def bf16_to_f16_at(src: int, dst: int, n: int, k: Kernels) -> None:
    """``n`` bfloat16 values at address ``src`` -> float16 at ``dst`` (raw addresses: no numpy wrapper per call,
    which the export's inner loop would pay thousands of times)."""
    import numpy as np

    stage = getattr(_local, "stage", None)
    if stage is None:  # one staging buffer per thread: a fresh 256 KiB array per call costs page faults
        stage = _local.stage = np.empty(CHUNK, dtype=np.float32)
    staged = stage.ctypes.data  # raw addresses once: numpy's .ctypes attribute costs microseconds per access
    to_f32, to_f16 = k.bf16_to_f32, k.f32_to_f16
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        to_f32(src + 2 * start, staged, count)
        to_f16(staged, dst + 2 * start, count)


def quantize_rows(rows, qtype: int, nbytes: int, k: Kernels):
    """Contiguous float32 rows -> the bytes of GGML type ``qtype`` (ggml's reference quantizer, as llama.cpp
    writes them), or None when this build has no ``ggml_quantize_chunk``."""
    import numpy as np

    if k.quantize_chunk is None:
        return None
    out = np.empty(nbytes, dtype=np.uint8)
    n_rows, n_per_row = rows.shape[0], rows.size // rows.shape[0]
    written = k.quantize_chunk(qtype, rows.ctypes.data, out.ctypes.data, 0, n_rows, n_per_row, None)
    if written != nbytes:
        raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes, expected {nbytes}")
    return out


def f32_to_f16(src, out, k: Kernels) -> None:
    """Contiguous float32 -> contiguous uint16 float16 bits."""
    k.f32_to_f16(src.ctypes.data, out.ctypes.data, src.size)
