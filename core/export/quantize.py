"""K-quants (and Q4_0) through llama.cpp's own quantizer, as shipped inside llama-cpp-python.

The ``gguf`` package quantizes F16/BF16/Q8_0 in numpy, but not the K-quants users want for laptops
(Q4_K_M, Q5_K_M, Q6_K). ``llama_cpp.llama_model_quantize`` is the same C function as llama.cpp's
``llama-quantize`` tool, already compiled in the wheel, so nothing has to be cloned or built. Tensors whose
rows are not a multiple of 256 cannot be K-quantized; llama.cpp then picks a fallback type for them.

``ftwiz export`` uses this only where the llama-cpp-python build lacks ggml's ``ggml_quantize_chunk``:
otherwise :mod:`ftwiz.core.export.kquant` writes the same bytes straight from the safetensors (this
function maps the whole F16 source, so its memory grows with the model).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from pathlib import Path

from ftwiz.core.atomic import atomic_path
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.pause import pause_point
from ftwiz.core.quant_types import BITS_PER_WEIGHT, QUANTIZER_TYPES

log_ = logging.getLogger(__name__)

# quant name -> llama.cpp's LLAMA_FTYPE constant name in llama_cpp (the types its quantizer makes)
K_QUANTS: dict[str, str] = QUANTIZER_TYPES


def quantize_gguf(src: str | Path, dst: str | Path, quant: str, *, overwrite: bool = False,
                  threads: int | None = None) -> Path:
    """Quantize an F32/F16/BF16 GGUF ``src`` to ``dst`` with ``quant`` (Q4_0, Q4_K_M, Q5_K_M, Q6_K)."""
    src, dst = Path(src), Path(dst)
    quant = quant.upper()
    if quant not in K_QUANTS:
        raise FtwizError(f"quantization '{quant}' is not offered by quantize_gguf",
                         fix=f"choose one of {', '.join(K_QUANTS)} (F16/BF16/Q8_0 are written by the converter)")
    if not src.is_file():
        raise FtwizError("source GGUF not found", where=Location(file=src), fix="export an F16 GGUF first")
    try:
        import llama_cpp
    except ImportError:
        raise FtwizError("llama-cpp-python is not installed, so K-quants cannot be made",
                         fix="pip install llama-cpp-python (or export Q8_0/F16, which need only gguf)") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, K_QUANTS[quant])
    params.nthread = threads or max(1, (os.cpu_count() or 1))
    needed = int(src.stat().st_size * BITS_PER_WEIGHT.get(quant, 8.5) / 16)  # from an F16 source; an F32 one overestimates
    with atomic_path(dst, overwrite=overwrite, needed=needed, what=f"the GGUF {dst.name}") as tmp, \
            _captured_stderr() as log:
        pause_point("quantize.start")  # disk-full tests fill the disk here, after the free-space check
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0:
            tail = " | ".join(log.read().strip().splitlines()[-3:])
            invalid = "found inf value" in log.text or "found nan value" in log.text  # ggml_validate_row_data
            raise FtwizError(f"llama.cpp could not quantize to {quant} (status {status}): {tail}",
                             where=Location(file=src),
                             fix="the model has weights beyond float16's range (±65504), which are inf in the F16 "
                                 "GGUF a K-quant is made from (or NaN weights of its own): export with --quant BF16 "
                                 "or --quant Q8_0 instead" if invalid else
                                 "check that the source is an F16/BF16/F32 GGUF written by ftwiz export")
    fallback = [line for line in log.text.splitlines() if "required fallback quantization" in line]
    if fallback:  # rows not a multiple of 256: worth knowing, not an error
        log_.info("%s", fallback[-1].split("WARNING:")[-1].strip())
    return dst


class _Log:
    def __init__(self, file) -> None:
        self.file = file
        self.text = ""

    def read(self) -> str:
        self.file.flush()
        self.file.seek(0)
        self.text = self.file.read().decode("utf-8", "replace")
        return self.text


@contextlib.contextmanager
def _captured_stderr():
    """llama.cpp's quantizer prints a line per tensor to the C-level stderr; keep it out of the user's
    terminal (and the wizard's) and hand it back for error messages."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as file:
        log = _Log(file)
        os.dup2(file.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.read()
