"""The GGUF quantization types ftwiz writes, with their properties: the one table every stage reads.

Who reads it: the recipe (``export_quant`` accepts exactly these names), the export preflight and the hub
pull (file sizes from bits per weight), the converter (the types it writes itself and their
``general.file_type``), the quantizer (the types llama.cpp's quantizer makes from a 16-bit GGUF, and its
``LLAMA_FTYPE`` constant), the export pipeline and shell completion (the names a user may give).

Bits per weight are llama.cpp's published averages for a 7B model (its ``quantize --help`` table), so a
size estimate is ``parameters * bits_per_weight / 8`` bytes. The order is the order help texts list them:
the converter's own types first, then the quantizer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class QuantType:
    """One GGUF output type.

    ``file_type`` is llama.cpp's ``LLAMA_FTYPE`` number stored as ``general.file_type``; ``llama_ftype`` the
    name of that constant in llama-cpp-python (set only where its quantizer makes the type).
    """

    name: str
    bits_per_weight: float
    file_type: int
    k_quant: bool  # a K-quant (super-blocks with per-block scales): Q4_K_M, Q5_K_M, Q6_K
    needs_llama_cpp_quantize: bool  # made by llama.cpp's quantizer from a 16-bit GGUF, not by our converter
    llama_ftype: str | None = None


QUANT_TYPES: dict[str, QuantType] = {q.name: q for q in (
    QuantType("F32", 32.0, 0, k_quant=False, needs_llama_cpp_quantize=False),
    QuantType("F16", 16.0, 1, k_quant=False, needs_llama_cpp_quantize=False),
    QuantType("BF16", 16.0, 32, k_quant=False, needs_llama_cpp_quantize=False),
    QuantType("Q8_0", 8.5, 7, k_quant=False, needs_llama_cpp_quantize=False),
    QuantType("Q4_0", 4.55, 2, k_quant=False, needs_llama_cpp_quantize=True, llama_ftype="LLAMA_FTYPE_MOSTLY_Q4_0"),
    QuantType("Q4_K_M", 4.89, 15, k_quant=True, needs_llama_cpp_quantize=True,
              llama_ftype="LLAMA_FTYPE_MOSTLY_Q4_K_M"),
    QuantType("Q5_K_M", 5.69, 17, k_quant=True, needs_llama_cpp_quantize=True,
              llama_ftype="LLAMA_FTYPE_MOSTLY_Q5_K_M"),
    QuantType("Q6_K", 6.56, 18, k_quant=True, needs_llama_cpp_quantize=True, llama_ftype="LLAMA_FTYPE_MOSTLY_Q6_K"),
)}

QUANT_NAMES: tuple[str, ...] = tuple(QUANT_TYPES)
# the types our converter writes directly from safetensors (no llama.cpp involved)
CONVERTER_TYPES: tuple[str, ...] = tuple(n for n, q in QUANT_TYPES.items() if not q.needs_llama_cpp_quantize)
# the types llama.cpp's quantizer makes from a 16-bit GGUF -> its LLAMA_FTYPE constant
QUANTIZER_TYPES: dict[str, str] = {n: q.llama_ftype for n, q in QUANT_TYPES.items()
                                   if q.needs_llama_cpp_quantize and q.llama_ftype}
BITS_PER_WEIGHT: dict[str, float] = {n: q.bits_per_weight for n, q in QUANT_TYPES.items()}
FILE_TYPES: dict[str, int] = {n: q.file_type for n, q in QUANT_TYPES.items()}
# what the wizard's export step offers after the recipe's own choices: the usual sizes, smallest first,
# and F16 for a lossless copy (every other row stays reachable through ``ftwiz export --quant``)
COMMON_QUANTS: tuple[str, ...] = ("Q4_K_M", "Q5_K_M", "Q8_0", "F16")

# the recipe's ``export_quant`` values, derived from the table (a new row is a valid recipe value at once)
QuantName = Literal[QUANT_NAMES]  # type: ignore[valid-type]


def estimated_bytes(parameters: int, quant: str) -> int:
    """Bytes of a GGUF of ``parameters`` weights in ``quant`` (KeyError for a name not in the table)."""
    return int(parameters * QUANT_TYPES[quant].bits_per_weight / 8)
