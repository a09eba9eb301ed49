"""K-quants (Q4_K_M, Q5_K_M, Q6_K) and Q4_0 written straight from safetensors, as llama.cpp's quantizer would.

Why: the old path wrote an F16 GGUF first and handed it to ``llama_model_quantize``, which maps the whole
intermediate (peak RSS 1.24x the model on Linux) and costs a full extra write and read of it. Here the
converter's streaming writer (:mod:`ftwiz.core.export.gguf_data`: whole-row pieces on worker threads) is
given a per-tensor type chosen exactly as llama.cpp chooses it, and each piece is quantized with ggml's own
``ggml_quantize_chunk`` (:mod:`ftwiz.core.export.ggml_kernels`), so memory stays at a few pieces per thread.

Byte-identity with llama.cpp: its quantizer reads the F16 GGUF, widens each tensor to float32 and calls
``ggml_quantize_chunk`` on whole rows with no importance matrix. Rows are quantized independently, so
feeding the same function the same float32 values (the source rounded to float16 exactly as our F16
export rounds it, then widened) gives the same bytes, whatever the row chunking. Tensors llama.cpp does
not quantize (1-D norms and biases, rope factors) keep the F16 export's type and bytes.

The type rules are those of the llama.cpp bundled in llama-cpp-python 0.3.36 (build 0c1e570), checked
tensor for tensor against its quantizer by tests/unit/test_export_kquant.py: a llama-cpp-python upgrade
whose rules moved shows up there as a failing test (the files stay valid GGUFs, with the older type mix).

When this llama-cpp-python build has no ``ggml_quantize_chunk``, :func:`direct_quant_available` is False and
the export pipeline keeps the F16 intermediate + ``llama_model_quantize`` path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ftwiz.core.errors import FtwizError

# ftype name -> the GGML type most tensors get (llama.cpp's llama_ftype_get_default_type)
DEFAULT_TYPES: dict[str, str] = {"Q4_0": "Q4_0", "Q4_K_M": "Q4_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}
# what a tensor whose row is not a multiple of the target's block size gets instead (llama.cpp's
# tensor_type_fallback); a 32-block target (Q4_0, Q8_0) whose row is not whole blocks becomes F16 (measured on
# the bundled llama.cpp: newer upstream sources refuse the model there instead)
_FALLBACK: dict[str, str] = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
# tensors llama.cpp never quantizes, by substring of the name (tensor_allows_quantization)
_KEEP_SUBSTRINGS = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight", "time_mix_first.weight",
    "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
    "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
    "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
    "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd",
    ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
)
_KEEP_NAMES = ("position_embd.weight", "token_types.weight")
_LAYER = re.compile(r"blk\.(-?\d+)\.")


def direct_quant_available(quant: str) -> bool:
    """True when ``quant`` can be written straight from safetensors (ggml's quantizer is loadable)."""
    from ftwiz.core.export import ggml_kernels

    if quant.upper() not in DEFAULT_TYPES:
        return False
    kernels = ggml_kernels.kernels()
    return kernels is not None and kernels.quantize_chunk is not None


def needs_f16_intermediate(quants: Sequence[str]) -> bool:
    """Whether exporting ``quants`` writes an F16 GGUF first (a K-quant this build cannot write directly).

    The disk checks count the F16 only then (or when F16 itself was asked for)."""
    from ftwiz.core.quant_types import CONVERTER_TYPES

    return any(q.upper() not in CONVERTER_TYPES and not direct_quant_available(q) for q in quants)


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama.cpp's choice of the layers that get more bits: the first and last eighth, and every third between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or _c_mod(i_layer - n_layers // 8, 3) == 2


def _c_mod(a: int, b: int) -> int:
    """C's ``%`` (truncates toward zero): Python's differs for negative ``a``."""
    return a - b * int(a / b)


def _category(name: str) -> str:
    """llama.cpp's tensor_get_category: broad roles by name (first match wins, in this order)."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for needle, category in (("attn_qkv.weight", "attn_v"), ("attn_kv_b.weight", "attn_v"),
                             ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                             ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"),
                             ("ffn_down", "ffn_down")):
        if needle in name:
            return category  # attn_qkv and attn_kv_b count as attn_v (category_is_attn_v)
    return "other"


def _n_dims(shape: Sequence[int]) -> int:
    """ggml_n_dims: dimensions up to the last one above 1, in ggml's order (numpy's reversed)."""
    ne = list(reversed(shape))
    for i in range(len(ne) - 1, 0, -1):
        if ne[i] != 1:
            return i + 1
    return 1


def allows_quantization(name: str, shape: Sequence[int]) -> bool:
    """llama.cpp's tensor_allows_quantization for a model with no overrides: 2-D+ weights except norms & co."""
    if _n_dims(shape) < 2 or not name.endswith("weight"):
        return False
    return name not in _KEEP_NAMES and not any(s in name for s in _KEEP_SUBSTRINGS)


def _layer_order(name: str) -> tuple[int, str]:
    """llama.cpp's weight_name_comparer: tensors outside blocks first, then by block number, then by name."""
    match = _LAYER.match(name)
    return (int(match.group(1)) if match else -1, name)


def _is_70b(arch: str, n_layers: int, n_head: int, n_head_kv: int) -> bool:
    """LLM_TYPE_70B as llama.cpp's hyper-parameter loader sets it (only the archs ftwiz writes)."""
    return n_layers == 80 and ((arch == "llama" and n_head != n_head_kv) or arch == "qwen2")


def _with_fallback(ncols: int, target: str) -> str:
    """llama.cpp's tensor_type_fallback: a row that is not whole blocks of ``target`` gets another type."""
    if ncols % _block(target) == 0:
        return target
    fallback = _FALLBACK.get(target, target)
    return fallback if ncols % _block(fallback) == 0 else "F16"


def tensor_types(tensors: Sequence[tuple[str, Sequence[int], str]], quant: str, *, arch: str, n_layers: int,
                 n_head: int, n_head_kv: int, fallbacks: dict[str, str] | None = None) -> dict[str, str]:
    """GGML type name of every tensor in a ``quant`` GGUF, as llama.cpp's ``llama_tensor_get_type`` picks it;
    ``fallbacks``, when given, receives {name: the K-quant type it would have had} for every tensor whose rows
    are not whole blocks of that type (llama.cpp warns about each of them).

    ``tensors``: (GGUF name, numpy shape, type in the F16 GGUF llama.cpp would read: "F16" or "F32").
    Facts mirrored from llama.cpp's src/llama-quant.cpp (``llama_tensor_get_type`` and its helpers), for
    a dense model quantized without an importance matrix or overrides:

    - norms, biases and other 1-D tensors, and the names llama.cpp never quantizes, keep their type;
    - ``output.weight`` (and ``token_embd.weight`` when the embeddings are tied, i.e. no output.weight)
      gets Q6_K, or Q8_0 when its rows are not whole 256-blocks;
    - Q4_K_M / Q5_K_M: ``attn_v`` (and fused ``attn_qkv``) and ``ffn_down`` get Q6_K on the layers
      ``use_more_bits(i, n)`` picks, ``i`` counting those tensors in llama.cpp's weight order (by block);
      a 70B-class model (80 layers) lifts the remaining Q4_K attn_v to Q5_K;
    - a row that is not whole blocks falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and to F16 when
      32 does not divide it either.
    """
    quant = quant.upper()
    default = DEFAULT_TYPES[quant]
    names = [name for name, _, _ in tensors]
    tied = "output.weight" not in names
    n_attn_v = sum(_category(n) == "attn_v" for n in names)
    big = _is_70b(arch, n_layers, n_head, n_head_kv)
    i_attn_v = i_ffn_down = 0
    chosen: dict[str, str] = {}
    for name, shape, current in sorted(tensors, key=lambda t: _layer_order(t[0])):
        if not allows_quantization(name, shape):
            chosen[name] = current
            continue
        category, ncols, new = _category(name), shape[-1], default
        if category == "output" or (tied and category == "token_embd"):
            new = "Q8_0" if ncols % _block(default) else "Q6_K"  # (llama.cpp keeps Q8_0 for a Q8_0 ftype)
            if new == "Q8_0" and fallbacks is not None:
                fallbacks[name] = "Q6_K"
        elif category == "attn_v":
            if quant in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_attn_v, n_attn_v):
                new = "Q6_K"
            if big and new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
            i_attn_v += 1
        elif category == "ffn_down":
            if quant in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_ffn_down, n_layers):
                new = "Q6_K"
            i_ffn_down += 1
        chosen[name] = _with_fallback(ncols, new)
        if chosen[name] != new and fallbacks is not None:
            fallbacks[name] = new
    return chosen


def _block(type_name: str) -> int:
    import gguf

    return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]][0]


def retype_plans(plans: list[Any], params: Any, quant: str) -> dict[str, str]:
    """Give the F16 export's tensor plans (``convert.TensorPlan``) their ``quant`` types, in place; returns the
    fallbacks (see :func:`tensor_types`).

    Quantized tensors are marked ``via_f16``: their values are rounded to float16 first, as in the F16 GGUF
    llama.cpp's quantizer would have read.
    """
    import gguf

    f16_type = {gguf.GGMLQuantizationType.F16: "F16", gguf.GGMLQuantizationType.F32: "F32"}
    fallbacks: dict[str, str] = {}
    types = tensor_types([(p.name, p.shape, f16_type[p.qtype]) for p in plans], quant, arch=params.info.gguf_arch,
                         n_layers=params.num_layers, n_head=params.num_heads, n_head_kv=params.num_kv_heads,
                         fallbacks=fallbacks)
    for plan in plans:
        qtype = gguf.GGMLQuantizationType[types[plan.name]]
        if qtype == plan.qtype:
            continue
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        count = 1
        for d in plan.shape:
            count *= d
        plan.qtype, plan.nbytes, plan.via_f16 = qtype, count // block * size, True
    return fallbacks


def fallback_note(plans: list[Any], fallbacks: dict[str, str], quant: str) -> str | None:
    """One line for the user when tensors of a ``quant`` export got another type because their rows are not
    whole blocks (e.g. Qwen2.5-0.5B's 896-wide rows and Q4_K's 256-value blocks): which types, how many, and
    that the file is larger than that quant usually is. None when every tensor got its K-quant type."""
    if not fallbacks:
        return None
    import gguf

    by_plan = {p.name: p for p in plans}
    by_used: dict[str, list[tuple[str, int]]] = {}  # type written -> (type it replaced, row length) per tensor
    for name, intended in fallbacks.items():
        plan = by_plan[name]
        by_used.setdefault(gguf.GGMLQuantizationType(plan.qtype).name, []).append((intended, plan.shape[-1]))
    quantized = sum(1 for p in plans if len(p.shape) > 1 and p.via_f16)
    parts = []
    for used, items in by_used.items():
        intended = sorted({i for i, _ in items})
        rows = ", ".join(map(str, sorted({r for _, r in items})))
        blocks = "/".join(str(b) for b in sorted({_block(i) for i in intended}))
        parts.append(f"{len(items)} as {used} instead of {'/'.join(intended)} (rows of {rows} values are not "
                     f"whole {blocks}-value blocks)")
    return (f"{quant}: {len(fallbacks)} of {quantized} quantized tensors are written in other types, as llama.cpp's "
            f"quantizer does: {'; '.join(parts)}. The file is larger and closer in quality to those types than a "
            f"typical {quant}")


def quantize_via_f16(rows, src_dtype: str, qtype: Any, out=None):
    """Source rows -> ``qtype`` blocks from their float16-rounded values, with ggml's quantizer.

    ``rows``: (n, row length) array of the source's dtype (bfloat16 as uint16 bits); ``out``: the worker's
    uint16 buffer for the float16 step. Returns uint8 of shape (n, bytes per row).
    """
    import gguf
    import numpy as np
    from ftwiz.core.export import ggml_kernels
    from ftwiz.core.export.dtypes import to_gguf_array

    half = to_gguf_array(rows, src_dtype, gguf.GGMLQuantizationType.F16, out=out)  # the F16 export's rounding
    values = np.ascontiguousarray(half, dtype=np.float16).astype(np.float32)  # exact, as ggml_fp16_to_fp32_row
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    kernels = ggml_kernels.kernels()
    data = ggml_kernels.quantize_rows(values, int(qtype), values.size // block * size, kernels) if kernels else None
    if data is None:
        raise FtwizError("this llama-cpp-python build has no ggml_quantize_chunk",
                         fix="reinstall llama-cpp-python, or export F16 / Q8_0")
    return data.reshape(rows.shape[0], -1)
