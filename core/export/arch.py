"""Which Hugging Face architectures ftwiz can write as GGUF, and how their hyper-parameters map.

Everything here reads ``config.json`` only, so an unsupported model or rope-scaling type is refused
before a single tensor is read (the preflight check and the converter share this module).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.model_config import language_config, read_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchInfo:
    """How one HF architecture becomes a GGUF one."""

    gguf_arch: str  # llama.cpp's architecture name (general.architecture)
    permute_qk: bool  # HF rotate-half -> Meta interleaved pairs (llama.cpp's LLAMA rope); NeoX archs need none
    default_tied: bool = False
    norm_plus_one: bool = False  # Gemma's RMSNorm scales by (1 + w); llama.cpp multiplies by the stored w
    swa_pattern: int = 0  # llama.cpp's fixed sliding-window layout: layer i slides when i % n < n - 1


# Facts from llama.cpp's model list: Mistral is written as "llama"; Qwen2/3 use the NeoX rope layout.
ARCHITECTURES: dict[str, ArchInfo] = {
    "LlamaForCausalLM": ArchInfo("llama", permute_qk=True),
    "MistralForCausalLM": ArchInfo("llama", permute_qk=True),
    "Qwen2ForCausalLM": ArchInfo("qwen2", permute_qk=False, default_tied=False),
    "Qwen3ForCausalLM": ArchInfo("qwen3", permute_qk=False, default_tied=False),
    # Phi-3: fused qkv_proj / gate_up_proj map one to one onto llama.cpp's attn_qkv / ffn_up (gate first)
    "Phi3ForCausalLM": ArchInfo("phi3", permute_qk=False),
    # Gemma 2/3: NeoX rope, tied embeddings, norms stored as 1 + w, local/global layers in a fixed pattern
    "Gemma2ForCausalLM": ArchInfo("gemma2", permute_qk=False, default_tied=True, norm_plus_one=True, swa_pattern=2),
    "Gemma3ForCausalLM": ArchInfo("gemma3", permute_qk=False, default_tied=True, norm_plus_one=True, swa_pattern=6),
}
# Image-text checkpoints whose language model is exported alone (the vision tower needs llama.cpp's mmproj);
# their text_config is read through ftwiz.core.model_config, which fills in transformers' defaults
MULTIMODAL_TEXT: dict[str, str] = {"Gemma3ForConditionalGeneration": "Gemma3ForCausalLM"}
# Where such checkpoints keep the language model (transformers' two layouts), and what to leave out
_TEXT_PREFIXES = (("language_model.model.", "model."), ("model.language_model.", "model."),
                  ("language_model.lm_head.", "lm_head."))
_NON_TEXT_PREFIXES = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector.")


def text_tensor_name(name: str) -> str | None:
    """The text-model name of a checkpoint tensor; None for vision-tower and projector weights."""
    if name.startswith(_NON_TEXT_PREFIXES):
        return None
    for prefix, replacement in _TEXT_PREFIXES:
        if name.startswith(prefix):
            return replacement + name[len(prefix):]
    return name


# Gemma 2/3 sizes whose attention scale llama.cpp derives from hidden/heads instead of head_dim (the 27Bs)
_GEMMA_HIDDEN_OVER_HEADS_LAYERS = {"gemma2": 46, "gemma3": 62}

# Tensors a checkpoint may hold that GGUF recomputes at load time.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "attn.masked_bias", "attn.bias")

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3", "yarn", "longrope")


@dataclass
class ModelParams:
    """The hyper-parameters the GGUF header needs, normalised across config.json dialects."""

    hf_arch: str
    info: ArchInfo
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    context_length: int
    tied: bool
    torch_dtype: str
    rope_scaling: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    rotary_dim: int = 0  # dimensions of each head that rope rotates (Phi's partial_rotary_factor)
    sliding_window: int | None = None
    rope_theta_swa: float | None = None  # rope base of the sliding-window layers when it differs (Gemma 3)
    original_context: int = 0  # LongRoPE: the pre-extension context the short factors belong to
    attn_softcap: float | None = None  # Gemma 2's tanh caps on attention scores and final logits
    final_softcap: float | None = None


def _rope(cfg: dict[str, Any]) -> tuple[float, dict[str, Any], float | None]:
    """(theta, scaling, sliding-layer theta) from the transformers 4.x keys or 5.x ``rope_parameters``.

    transformers 5 nests ``rope_parameters`` by layer type for models with local and global layers
    (Gemma 3: ``{"full_attention": {...}, "sliding_attention": {...}}``); the global layers' values are
    the model's rope, the sliding layers' theta is returned separately.
    """
    params = cfg.get("rope_parameters") or {}
    swa_theta = cfg.get("rope_local_base_freq")
    if isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values()):
        by_type = params
        params = by_type.get("full_attention") or next(iter(by_type.values()))
        swa_theta = (by_type.get("sliding_attention") or {}).get("rope_theta", swa_theta)
    theta = cfg.get("rope_theta") or params.get("rope_theta") or 10000.0
    scaling = cfg.get("rope_scaling") or {}
    if not scaling and params.get("rope_type", "default") != "default":
        scaling = params
    return float(theta), dict(scaling), float(swa_theta) if swa_theta else None


def _check_gemma(model_dir: Path, cfg: dict[str, Any], info: ArchInfo, head_dim: int, hidden: int, heads: int,
                 layers: int) -> None:
    """Refuse Gemma variants llama.cpp would run differently: it hard-codes the attention scale, the
    local/global layer pattern and the soft-capping (Gemma 2 always caps, Gemma 3 never does), so a checkpoint
    that changes any of them would export without error and then answer differently from the fine-tune."""
    config = Path(model_dir) / "config.json"
    caps = ("attn_logit_softcapping", "final_logit_softcapping")
    for key in caps:
        if info.gguf_arch == "gemma2" and key in cfg and cfg[key] is None:
            raise FtwizError(f"{key} is turned off (null), but llama.cpp's Gemma 2 always soft-caps",
                             where=Location(file=config, field=key),
                             fix="train and export with the base model's soft-capping (50.0 / 30.0), or use a "
                                 "runtime that honours the setting (vLLM, transformers)")
        if info.gguf_arch == "gemma3" and cfg.get(key) is not None:
            raise FtwizError(f"{key} is set, but llama.cpp's Gemma 3 applies no soft-capping",
                             where=Location(file=config, field=key),
                             fix="keep the base model's null value, or use a runtime that honours it")
    scalar = cfg.get("query_pre_attn_scalar")
    big = layers == _GEMMA_HIDDEN_OVER_HEADS_LAYERS[info.gguf_arch]
    expected = hidden // heads if big else head_dim
    if scalar is not None and int(scalar) != expected:
        raise FtwizError(f"query_pre_attn_scalar is {scalar}, but llama.cpp scales {info.gguf_arch} attention by "
                         f"1/sqrt({expected}) for this size", where=Location(file=config, field="query_pre_attn_scalar"),
                         fix="export only the published Gemma layouts, or use llama.cpp's convert_hf_to_gguf.py")
    layer_types = cfg.get("layer_types")
    if layer_types:
        n = info.swa_pattern
        want = ["sliding_attention" if i % n < n - 1 else "full_attention" for i in range(len(layer_types))]
        if list(layer_types) != want:
            raise FtwizError(f"layer_types do not follow {info.gguf_arch}'s fixed pattern (every {n}th layer global)",
                             where=Location(file=config, field="layer_types"),
                             fix="llama.cpp cannot run this layer layout; keep the published layer_types")


def model_params(model_dir: Path, cfg: dict[str, Any] | None = None) -> ModelParams:
    """Parse and check config.json; raise FtwizError for anything the converter cannot write."""
    cfg = cfg if cfg is not None else read_config(model_dir)
    where = Location(file=Path(model_dir) / "config.json", field="architectures")
    archs = cfg.get("architectures") or []
    hf_arch = archs[0] if archs else ""
    if hf_arch in MULTIMODAL_TEXT and isinstance(cfg.get("text_config"), dict):
        log.warning("%s: exporting the language model only; images need a separate vision projector", hf_arch)
        cfg = language_config(cfg)
        hf_arch = MULTIMODAL_TEXT[hf_arch]
    if hf_arch not in ARCHITECTURES:
        raise FtwizError(
            f"architecture '{hf_arch or 'missing'}' cannot be exported to GGUF by ftwiz yet",
            where=where,
            fix=f"fine-tune one of the supported families ({', '.join(sorted({*ARCHITECTURES, *MULTIMODAL_TEXT}))}), "
            "or export with llama.cpp's convert_hf_to_gguf.py",
        )
    info = ARCHITECTURES[hf_arch]
    theta, scaling, swa_theta = _rope(cfg)
    rope_type = str(scaling.get("rope_type") or scaling.get("type") or "default")
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise FtwizError(f"rope scaling type '{rope_type}' is not supported by the GGUF exporter",
                         where=Location(file=Path(model_dir) / "config.json", field="rope_scaling"),
                         fix=f"supported: {', '.join(SUPPORTED_ROPE_TYPES)}")
    scaling["rope_type"] = rope_type
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size"):
        if cfg.get(key) is None:
            raise FtwizError(f"config.json has no {key}", where=Location(file=Path(model_dir) / "config.json", field=key),
                             fix="restore config.json from the base model (AutoConfig.from_pretrained(...).save_pretrained)")
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
                "num_key_value_heads", "head_dim"):
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise FtwizError(f"config.json's {key} is {value!r}, not a positive whole number",
                             where=Location(file=Path(model_dir) / "config.json", field=key),
                             fix="restore config.json from the base model (AutoConfig.from_pretrained(...).save_pretrained)")
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or hidden // heads
    tied = cfg.get("tie_word_embeddings")
    partial = cfg.get("partial_rotary_factor") or (cfg.get("rope_parameters") or {}).get("partial_rotary_factor") or 1.0
    if info.norm_plus_one:
        _check_gemma(model_dir, cfg, info, int(head_dim), hidden, heads, int(cfg["num_hidden_layers"]))
    if (hf_arch == "Phi3ForCausalLM") != (rope_type == "longrope") and rope_type != "default":
        raise FtwizError(f"rope scaling '{rope_type}' is not supported for {hf_arch} by llama.cpp's graph",
                         where=Location(file=Path(model_dir) / "config.json", field="rope_scaling"),
                         fix="LongRoPE is exported for Phi-3 only, and Phi-3 only with LongRoPE or none")
    original = int(scaling.get("original_max_position_embeddings") or cfg.get("original_max_position_embeddings") or 0)
    rotary_dim = int(int(head_dim) * float(partial))
    if rope_type == "longrope":
        _check_longrope(model_dir, scaling, rotary_dim, original)
    return ModelParams(
        hf_arch=hf_arch,
        info=info,
        vocab_size=int(cfg["vocab_size"]),
        hidden_size=hidden,
        intermediate_size=int(cfg["intermediate_size"]),
        num_layers=int(cfg["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(head_dim),
        rms_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        context_length=int(cfg.get("max_position_embeddings", 4096)),
        tied=bool(info.default_tied if tied is None else tied),
        torch_dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or "float32"),
        rope_scaling=scaling,
        quantization=cfg.get("quantization_config"),
        rotary_dim=rotary_dim,
        sliding_window=cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None,
        rope_theta_swa=swa_theta if swa_theta and swa_theta != theta else None,
        original_context=original,
        attn_softcap=cfg.get("attn_logit_softcapping"),
        final_softcap=cfg.get("final_logit_softcapping"),
    )


def rope_factor_tensors(params: ModelParams) -> dict[str, list[float]]:
    """Rope frequency factors llama.cpp reads as tensors: Llama 3.1+'s, or Phi-3's LongRoPE long/short."""
    rope_type = params.rope_scaling.get("rope_type")
    if rope_type == "llama3":
        return {"rope_freqs.weight": llama3_rope_factors(params)}
    if rope_type != "longrope":
        return {}
    return {f"rope_factors_{kind}.weight": [float(v) for v in params.rope_scaling[f"{kind}_factor"]]
            for kind in ("long", "short")}


def _check_longrope(model_dir: Path, scaling: dict[str, Any], rotary_dim: int, original: int) -> None:
    config = Path(model_dir) / "config.json"
    for kind in ("long", "short"):
        values = scaling.get(f"{kind}_factor")
        if not isinstance(values, list) or len(values) != rotary_dim // 2:
            raise FtwizError(f"LongRoPE {kind}_factor must list {rotary_dim // 2} numbers (half the rotary dimensions)",
                             where=Location(file=config, field=f"rope_scaling.{kind}_factor"),
                             fix="restore config.json from the base model")
    if not original:
        raise FtwizError("LongRoPE needs original_max_position_embeddings",
                         where=Location(file=config, field="original_max_position_embeddings"),
                         fix="restore config.json from the base model")


def longrope_attention_factor(params: ModelParams) -> float:
    """The cos/sin scale LongRoPE applies: given in config, else sqrt(1 + ln(s) / ln(original)) for the
    extension ratio s = context / original (1 when not extended): the published Phi-3 formula."""
    given = params.rope_scaling.get("attention_factor")
    if given is not None:
        return float(given)
    scale = params.context_length / params.original_context
    return 1.0 if scale <= 1.0 else math.sqrt(1 + math.log(scale) / math.log(params.original_context))


def llama3_rope_factors(params: ModelParams) -> list[float]:
    """Per-frequency divisors of Llama 3.1+'s rope scaling, stored by llama.cpp as ``rope_freqs.weight``.

    Low frequencies (long wavelengths) are slowed by ``factor``, high ones are kept, and the band between
    is interpolated smoothly (Meta's published formula).
    """
    s = params.rope_scaling
    factor = float(s.get("factor", 8.0))
    low = float(s.get("low_freq_factor", 1.0))
    high = float(s.get("high_freq_factor", 4.0))
    old_ctx = float(s.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    factors = []
    for i in range(0, params.head_dim, 2):
        freq = 1.0 / (params.rope_theta ** (i / params.head_dim))
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return factors
