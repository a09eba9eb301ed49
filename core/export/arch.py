"""Which Hugging Face architectures ftwiz can write as GGUF, and how their hyper-parameters map.

Everything here reads ``config.json`` only, so an unsupported model or rope-scaling type is refused
before a single tensor is read (the preflight check and the converter share this module).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location


@dataclass(frozen=True)
class ArchInfo:
    """How one HF architecture becomes a GGUF one."""

    gguf_arch: str  # llama.cpp's architecture name (general.architecture)
    permute_qk: bool  # HF rotate-half -> Meta interleaved pairs (llama.cpp's LLAMA rope); NeoX archs need none
    default_tied: bool = False


# Facts from llama.cpp's model list: Mistral is written as "llama"; Qwen2/3 use the NeoX rope layout.
ARCHITECTURES: dict[str, ArchInfo] = {
    "LlamaForCausalLM": ArchInfo("llama", permute_qk=True),
    "MistralForCausalLM": ArchInfo("llama", permute_qk=True),
    "Qwen2ForCausalLM": ArchInfo("qwen2", permute_qk=False, default_tied=False),
    "Qwen3ForCausalLM": ArchInfo("qwen3", permute_qk=False, default_tied=False),
    # Phi-3: fused qkv_proj / gate_up_proj map one to one onto llama.cpp's attn_qkv / ffn_up (gate first)
    "Phi3ForCausalLM": ArchInfo("phi3", permute_qk=False),
}

# Tensors a checkpoint may hold that GGUF recomputes at load time.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "attn.masked_bias", "attn.bias")

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3", "yarn")


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


def read_config(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FtwizError(f"{model_dir} has no config.json, so it is not a Hugging Face model folder",
                         where=Location(file=path),
                         fix="point at the folder that contains config.json and *.safetensors") from None
    except json.JSONDecodeError as exc:
        raise FtwizError(f"config.json is not valid JSON: {exc.msg}", where=Location(file=path, line=exc.lineno),
                         fix="restore the file from the original model download") from None


def _rope(cfg: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(theta, scaling) from either the transformers 4.x keys or 5.x ``rope_parameters``."""
    params = cfg.get("rope_parameters") or {}
    if isinstance(params, dict) and "rope_theta" not in params and params:
        params = next(iter(params.values())) if isinstance(next(iter(params.values())), dict) else params
    theta = cfg.get("rope_theta") or params.get("rope_theta") or 10000.0
    scaling = cfg.get("rope_scaling") or {}
    if not scaling and params.get("rope_type", "default") != "default":
        scaling = params
    return float(theta), dict(scaling)


def model_params(model_dir: Path, cfg: dict[str, Any] | None = None) -> ModelParams:
    """Parse and check config.json; raise FtwizError for anything the converter cannot write."""
    cfg = cfg if cfg is not None else read_config(model_dir)
    where = Location(file=Path(model_dir) / "config.json", field="architectures")
    archs = cfg.get("architectures") or []
    hf_arch = archs[0] if archs else ""
    if hf_arch not in ARCHITECTURES:
        raise FtwizError(
            f"architecture '{hf_arch or 'missing'}' cannot be exported to GGUF by ftwiz yet",
            where=where,
            fix=f"fine-tune one of the supported families ({', '.join(sorted(ARCHITECTURES))}), "
            "or export with llama.cpp's convert_hf_to_gguf.py",
        )
    info = ARCHITECTURES[hf_arch]
    theta, scaling = _rope(cfg)
    rope_type = str(scaling.get("rope_type") or scaling.get("type") or "default")
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise FtwizError(f"rope scaling type '{rope_type}' is not supported by the GGUF exporter",
                         where=Location(file=Path(model_dir) / "config.json", field="rope_scaling"),
                         fix=f"supported: {', '.join(SUPPORTED_ROPE_TYPES)}")
    scaling["rope_type"] = rope_type
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or hidden // heads
    tied = cfg.get("tie_word_embeddings")
    partial = cfg.get("partial_rotary_factor") or (cfg.get("rope_parameters") or {}).get("partial_rotary_factor") or 1.0
    if hf_arch == "Phi3ForCausalLM" and rope_type != "default":
        raise FtwizError(f"Phi-3 with rope scaling '{rope_type}' (the 128k variants) is not supported yet",
                         where=Location(file=Path(model_dir) / "config.json", field="rope_scaling"),
                         fix="use a 4k-context Phi-3 checkpoint, or llama.cpp's convert_hf_to_gguf.py")
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
        rotary_dim=int(int(head_dim) * float(partial)),
        sliding_window=cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None,
    )


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
