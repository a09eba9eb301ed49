"""Hugging Face safetensors to GGUF, in-process, with the ``gguf`` package's writer.

    python -c "from ftwiz.core.export.convert import convert_to_gguf; convert_to_gguf('model', 'm.gguf')"

Why our own converter: llama.cpp's script must be cloned first and rejects fine-tuned tokenizers whose
pre-tokenizer hash it does not know. This one derives the pre-tokenizer from the split regex, streams one
tensor at a time (header first, then data, so RAM stays at one tensor), and writes to a temporary name
that is renamed only when the file is complete.

Layout facts (DESIGN.md section 4): llama-architecture GGUFs want Q/K rows in Meta's interleaved-pairs rope
order, so HF's rotate-half rows are permuted back; Qwen2/Qwen3/Phi-3 use the NeoX order and are copied as
is. 1-D tensors (norms, biases) stay F32. Tied embeddings have no ``output.weight``. Llama 3.1+ rope scaling
is written as ``rope_freqs.weight``, Phi-3's LongRoPE as ``rope_factors_long/short.weight``. Gemma's norms compute x * (1 + w), so they are stored as 1 + w; its
sliding-window layout and attention scale are fixed in llama.cpp and checked in :mod:`arch`.

Speed: the GGUF header comes from ``gguf.GGUFWriter``; the data section is written by
:mod:`ftwiz.core.export.gguf_data` (kernel copies for unchanged bytes, parallel conversion into the page
cache).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.atomic import atomic_path, make_parent
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.arch import (
    ModelParams,
    longrope_attention_factor,
    model_params,
    read_config,
    rope_factor_tensors,
)
from ftwiz.core.export.f16_range import OverflowLog, overflow_flag_works, overflow_note, watched
from ftwiz.core.export.gguf_data import write_data
from ftwiz.core.export.kquant import direct_quant_available, retype_plans
from ftwiz.core.export.placement import place_tensors
from ftwiz.core.export.q8_range import scale_overflow_note, scale_watched
from ftwiz.core.export.shape_check import check_shapes
from ftwiz.core.export.tensors import TensorRef
from ftwiz.core.pause import pause_point
from ftwiz.core.quant_types import CONVERTER_TYPES, FILE_TYPES

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
OUT_TYPES = CONVERTER_TYPES  # F32, F16, BF16, Q8_0: written here without llama.cpp
# general.file_type values (llama.cpp's LLAMA_FTYPE): lets tools print "Q8_0" without scanning tensors.


@dataclass
class TensorPlan:
    """One output tensor: its source, GGUF name, numpy shape, GGML type and byte size."""

    ref: TensorRef | None
    name: str
    shape: tuple[int, ...]
    qtype: object  # gguf.GGMLQuantizationType
    nbytes: int
    permute_heads: int = 0  # >0: undo rotate-half with this many heads (llama q/k)
    add_one: bool = False  # Gemma norms: stored as 1 + w (written as F32)
    values: tuple[float, ...] = ()  # synthesised tensors (ref None): their F32 values
    via_f16: bool = False  # K-quant exports: quantize the float16-rounded values, as llama.cpp would (kquant)


def permute_rotate_half(weight, n_head: int):
    """HF rotate-half rows -> Meta interleaved pairs: reshape (n_head, 2, head_dim/2, ...), swap axes 1, 2."""
    shape = weight.shape
    return weight.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _choose_type(out_type: str, shape: tuple[int, ...]):
    """Per-tensor GGML type: 1-D stays F32; rows not a multiple of the block size fall back to F16."""
    import gguf

    q = gguf.GGMLQuantizationType
    if len(shape) < 2 or out_type == "F32":
        return q.F32
    target = q[out_type]
    block, _ = gguf.GGML_QUANT_SIZES[target]
    if shape[-1] % block:
        log.info("row length %d is not a multiple of %d: keeping F16", shape[-1], block)
        return q.F16
    return target


def _nbytes(shape: tuple[int, ...], qtype) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def plan_tensors(model_dir: Path, params: ModelParams, out_type: str) -> list[TensorPlan]:
    """Map every checkpoint tensor to its GGUF name and type; raise before any data is read."""
    import gguf

    plans: list[TensorPlan] = []
    for placed in place_tensors(model_dir, params):
        ref, hf_name = placed.ref, placed.hf_name
        heads = 0
        if params.info.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            heads = params.num_heads
        elif params.info.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            heads = params.num_kv_heads
        qtype = _choose_type(out_type, ref.shape)
        add_one = params.info.norm_plus_one and hf_name.endswith("norm.weight")
        plans.append(TensorPlan(ref, placed.gguf_name, ref.shape, qtype, _nbytes(ref.shape, qtype), heads, add_one))
    for name, values in rope_factor_tensors(params).items():
        plans.append(TensorPlan(None, name, (len(values),), gguf.GGMLQuantizationType.F32, 4 * len(values),
                                values=tuple(values)))
    return plans


def write_hparams(writer, params: ModelParams, name: str, out_type: str) -> None:
    """The ``{arch}.*`` keys llama.cpp requires, plus rope scaling when the model uses it."""
    import gguf

    writer.add_name(name)
    writer.add_context_length(params.context_length)
    writer.add_embedding_length(params.hidden_size)
    writer.add_block_count(params.num_layers)
    writer.add_feed_forward_length(params.intermediate_size)
    writer.add_head_count(params.num_heads)
    writer.add_head_count_kv(params.num_kv_heads)
    writer.add_layer_norm_rms_eps(params.rms_eps)
    writer.add_rope_freq_base(params.rope_theta)
    writer.add_rope_dimension_count(params.rotary_dim or params.head_dim)
    if params.info.gguf_arch in ("phi3", "gemma2", "gemma3") and params.sliding_window:
        writer.add_sliding_window(int(params.sliding_window))
    if params.attn_softcap:
        writer.add_attn_logit_softcapping(float(params.attn_softcap))
    if params.final_softcap:
        writer.add_final_logit_softcapping(float(params.final_softcap))
    if params.rope_theta_swa:
        writer.add_rope_freq_base_swa(params.rope_theta_swa)
    if params.head_dim * params.num_heads != params.hidden_size or params.info.gguf_arch in ("qwen3", "gemma2",
                                                                                            "gemma3"):
        writer.add_key_length(params.head_dim)
        writer.add_value_length(params.head_dim)
    writer.add_vocab_size(params.vocab_size)
    writer.add_file_type(FILE_TYPES[out_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    scaling = params.rope_scaling
    rope_type = scaling.get("rope_type", "default")
    if rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
    elif rope_type == "longrope":  # Phi-3 128k / 3.5 / 4-mini: factors are tensors, plus these two keys
        writer.add_rope_scaling_attn_factors(longrope_attention_factor(params))
        writer.add_rope_scaling_orig_ctx_len(params.original_context)
    elif rope_type == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
        if "original_max_position_embeddings" in scaling:
            writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))


def convert_to_gguf(model_dir: str | Path, out_file: str | Path, out_type: str = "F16", *, overwrite: bool = False,
                    progress: Progress | None = None, extra_keys: Mapping[str, str | bool | int] | None = None,
                    notes: list[str] | None = None) -> Path:
    """Write ``model_dir`` (HF safetensors) as a GGUF of type F32/F16/BF16/Q8_0, or straight to a K-quant
    (Q4_0/Q4_K_M/Q5_K_M/Q6_K, see :mod:`ftwiz.core.export.kquant`) when ggml's quantizer is loadable; return
    the final path. ``extra_keys``: string/bool/integer keys written after the standard ones (a run's trained context,
    :mod:`ftwiz.core.trained_context`). Weights that the float16 step turns into ±inf (beyond ±65504,
    :mod:`ftwiz.core.export.f16_range`), and Q8_0 blocks whose float16 scale does (a weight of 8.32 million or more,
    :mod:`ftwiz.core.export.q8_range`), are written as llama.cpp's converter writes them, and said in a line
    each appended to ``notes`` (logged as a warning when ``notes`` is None)."""
    model_dir, out_file = Path(model_dir), Path(out_file)
    out_type = out_type.upper()
    with collector_paused():
        params, plans = _plan(model_dir, out_type)
        overflow = _overflow_log(plans)
        make_parent(out_file)
        needed = sum(p.nbytes for p in plans)  # checked by atomic_path after it swept old partials away
        with atomic_path(out_file, overwrite=overwrite, needed=needed, what=f"the GGUF {out_file.name}") as tmp:
            alignment = _write_header(tmp, model_dir, params, plans, out_type, extra_keys or {})
            pause_point("export.header")  # disk-full tests fill the disk here: header written, data not yet
            # the data section is ours: aligned blocks in header order, so unchanged bytes can be copied
            write_data(tmp, alignment, plans, _pausable(progress), overflow=overflow)
    said = [] if overflow is None else [
        overflow_note(overflow.counts, out_type, lossless=_lossless(overflow.counts, plans)),
        scale_overflow_note(overflow.blocks, lossless=_lossless(overflow.blocks, plans))]
    for note in filter(None, said):
        if notes is not None:
            notes.append(note)
        else:
            log.warning("%s", note)
    return out_file


def _lossless(counts: dict[str, int], plans: list[TensorPlan]) -> str:
    """The type that keeps the counted tensors' values: BF16 for a bfloat16 source, F32 when one is float32."""
    f32 = any(p.ref is not None and p.ref.dtype == "F32" and p.ref.name in counts for p in plans)
    return "F32" if f32 else "BF16"


def _overflow_log(plans: list[TensorPlan]) -> OverflowLog | None:
    """A log for the values written as float16 that become ±inf, when some tensor is written through float16
    from bfloat16/float32, and for the Q8_0 blocks whose float16 scale does (:mod:`ftwiz.core.export.q8_range`);
    the overflow flag's self-test runs here, once, rather than in a worker thread."""
    if any(watched(plan) for plan in plans):
        overflow_flag_works()
    elif not any(scale_watched(plan) for plan in plans):
        return None
    return OverflowLog()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block. Importing numpy and gguf, packing a 150k-token
    vocabulary and queueing the data section's pieces allocate about a million objects and no reference
    cycles; the collector's passes over them cost 0.04-0.06 CPU-s of a one-second F16 export (measured with
    ``gc.callbacks``) and reclaim nothing. The memory an export holds is arrays and mappings, freed by
    reference counting either way. Left as it was on exit (a caller that disabled it keeps it disabled)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan(model_dir: Path, out_type: str) -> tuple[ModelParams, list[TensorPlan]]:
    """The model's parameters and every tensor's plan; FtwizError before anything is written."""
    direct_quant = out_type not in OUT_TYPES and direct_quant_available(out_type)  # K-quants: kquant.py
    if out_type not in OUT_TYPES and not direct_quant:
        raise FtwizError(f"output type '{out_type}' is not written directly",
                         fix=f"use one of {', '.join(OUT_TYPES)}, or quantize_gguf for K-quants")
    cfg = read_config(model_dir)
    params = model_params(model_dir, cfg)
    if params.quantization:
        raise FtwizError("this model is stored quantized (config.json has quantization_config)",
                         where=Location(file=model_dir / "config.json", field="quantization_config"),
                         fix="export the 16-bit base or the merged model (ftwiz merge), not a 4/8-bit checkpoint")
    plans = plan_tensors(model_dir, params, "F16" if direct_quant else out_type)
    check_shapes(plans, params, model_dir)
    if direct_quant:  # the F16 export's tensors, retyped as llama.cpp's quantizer would retype them
        retype_plans(plans, params, out_type)
    return params, plans


def kquant_fallback_note(model_dir: str | Path, quant: str) -> str | None:
    """What a ``quant`` (K-quant or Q4_0) export of ``model_dir`` writes in other types than the quant's own,
    as one line for the user (:func:`~ftwiz.core.export.kquant.fallback_note`); None when nothing falls back
    or ``quant`` is written as it is (F16, Q8_0, ...). Reads only config.json and the safetensors headers."""
    from ftwiz.core.export.kquant import DEFAULT_TYPES, fallback_note

    if quant.upper() not in DEFAULT_TYPES:
        return None
    params, plans = _plan(Path(model_dir), "F16")
    return fallback_note(plans, retype_plans(plans, params, quant.upper()), quant.upper())


def _write_header(tmp: Path, model_dir: Path, params: ModelParams, plans: list[TensorPlan], out_type: str,
                  extra_keys: Mapping[str, str | bool | int] | None = None) -> int:
    """Keys, vocabulary and tensor infos of the GGUF at ``tmp``; returns the data section's alignment."""
    import gguf
    from ftwiz.core.export.gguf_kv import BulkGGUFWriter
    from ftwiz.core.export.gguf_name import gguf_general_name
    from ftwiz.core.export.sampling_defaults import write_sampling_defaults
    from ftwiz.core.export.train_bos import runtime_adds_bos
    from ftwiz.core.export.vocab import write_vocab
    from ftwiz.core.export.vocab_cache import read_vocab
    from ftwiz.core.trained_context import add_keys

    writer = BulkGGUFWriter(tmp, params.info.gguf_arch)  # gguf-py's writer, vocab arrays packed in bulk
    try:
        # parsed once (a Qwen2 one is 7-11 MB), for the name and the vocabulary; BPE merges packed from the
        # bytes; a byte-level BPE's arrays come from the cache when this tokenizer.json was exported before
        tj, merges, vocab = read_vocab(model_dir, params.vocab_size)
        write_hparams(writer, params, gguf_general_name(model_dir, tj), out_type)
        write_sampling_defaults(writer, model_dir)  # general.sampling.*: llama.cpp tools sample as recommended
        write_vocab(writer, model_dir, params.vocab_size, add_bos=runtime_adds_bos(model_dir), tokenizer_json=tj,
                    packed_merges=merges, vocab=vocab)
        del tj, merges, vocab  # freed before the data section: peak memory stays the vocabulary's or one piece's
        add_keys(writer, dict(extra_keys or {}))
        for plan in plans:
            writer.add_tensor_info(plan.name, plan.shape if plan.qtype in (gguf.GGMLQuantizationType.F32,
                                   gguf.GGMLQuantizationType.F16) else _byte_shape(plan), _np_dtype(plan.qtype),
                                   plan.nbytes, raw_dtype=plan.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
    finally:
        writer.close()
    return writer.data_alignment


def _pausable(progress: Progress | None) -> Progress:
    """The progress callback, plus the kill tests' pause point once the first tensor is written."""

    def report(done: int, count: int, message: str) -> None:
        if done == 1:
            pause_point("export.tensors")
        if progress:
            progress(done, count, message)

    return report


def _byte_shape(plan: TensorPlan) -> tuple[int, ...]:
    import gguf

    return tuple(gguf.quant_shape_to_byte_shape(plan.shape, plan.qtype))


def _np_dtype(qtype):
    import gguf
    import numpy as np

    q = gguf.GGMLQuantizationType
    return {q.F32: np.float32, q.F16: np.float16}.get(qtype, np.uint8)
