"""ModelSpec: the shape facts of a model read from its config.json, and its parameter counts by part.

Counts are exact for the supported architectures (llama, mistral, qwen2, qwen3, gemma 1-3, phi3, phi,
gpt_neox); unknown model types are estimated from the generic fields with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.model_config import language_config, read_config
from pydantic import BaseModel, Field

GATED_MLP = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text", "phi3", "mixtral"}
UNGATED_MLP = {"phi", "gpt_neox", "gpt2", "stablelm", "starcoder2", "falcon"}
QKV_BIAS = {"qwen2", "phi", "gpt_neox", "stablelm", "starcoder2"}
LINEAR_NAMES = {
    True: ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    False: ("q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"),
}


class ModelSpec(BaseModel):
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    gated_mlp: bool
    qkv_bias: bool
    max_position_embeddings: int | None = None
    rms_norm: bool = Field(True, description="RMSNorm (upcasts to fp32) vs LayerNorm")
    norms_per_block: int = Field(2, description="phi's parallel block shares one norm")
    warnings: list[str] = Field(default_factory=list)

    # --- per-part parameter counts -----------------------------------------------------------
    @property
    def q_out(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_out(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear in one block, by module name."""
        h, i = self.hidden_size, self.intermediate_size
        shapes = {"q_proj": (h, self.q_out), "k_proj": (h, self.kv_out), "v_proj": (h, self.kv_out),
                  "o_proj": (self.q_out, h)}
        if self.gated_mlp:
            shapes |= {"gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
        else:
            shapes |= {"fc1": (h, i), "fc2": (i, h)}
        return shapes

    @property
    def block_linear_params(self) -> int:
        per_block = sum(a * b for a, b in self.linear_shapes().values())
        bias = (self.q_out + 2 * self.kv_out) if self.qkv_bias else 0
        return self.num_layers * (per_block + bias)

    @property
    def norm_params(self) -> int:
        per_norm = self.hidden_size * (1 if self.rms_norm else 2)  # LayerNorm has a bias
        return self.num_layers * self.norms_per_block * per_norm + per_norm

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tied_embeddings else self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        return self.block_linear_params + self.norm_params + self.embedding_params + self.lm_head_params

    def parts(self) -> dict[str, int]:
        return {"embeddings": self.embedding_params, "lm_head": self.lm_head_params,
                "block_linears": self.block_linear_params, "norms": self.norm_params}


def spec_from_config(config: dict[str, Any], source: str = "config.json") -> ModelSpec:
    cfg = language_config(config)  # image-text models: the language model's settings, defaults filled in
    model_type = str(config.get("model_type", "unknown"))
    warnings = []
    try:
        hidden = int(cfg["hidden_size"])
        layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FtwizError(f"config lacks a required field: {exc}", where=Location(file=source),
                         fix="give the model's full config.json (hidden_size, num_hidden_layers, ...)") from None
    known = model_type in GATED_MLP | UNGATED_MLP
    if not known:
        warnings.append(f"unknown model type '{model_type}': estimated from generic fields; expect +/-20%")
    gated = model_type in GATED_MLP or (not known and "intermediate_size" in cfg and model_type not in UNGATED_MLP)
    intermediate = int(cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * hidden)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    return ModelSpec(
        model_type=model_type, hidden_size=hidden, intermediate_size=intermediate, num_layers=layers,
        num_heads=heads, num_kv_heads=int(cfg.get("num_key_value_heads") or heads), head_dim=head_dim,
        vocab_size=int(cfg.get("vocab_size") or _missing("vocab_size", source)),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", model_type.startswith("gemma"))),
        gated_mlp=gated, qkv_bias=bool(cfg.get("attention_bias", model_type in QKV_BIAS)),
        max_position_embeddings=cfg.get("max_position_embeddings"), warnings=warnings,
        rms_norm=gated, norms_per_block=1 if model_type == "phi" else 2,
    )


def _missing(field: str, source: str) -> int:
    """A field the estimate cannot do without: guessing it (a 32k vocabulary, say) would misjudge the fit."""
    raise FtwizError(f"config lacks {field}", where=Location(file=source, field=field),
                     fix="give the model's full config.json (AutoConfig.from_pretrained(...).save_pretrained)")


def load_model_spec(path_or_config: str | Path, *, allow_download: bool = False) -> ModelSpec:
    """From a model folder, a config.json, or a hub id / 'demo' resolved on this machine.

    With ``allow_download`` a hub id missing from the local cache costs one small download: its
    config.json, never the weights.
    """
    path = Path(path_or_config)
    # 'demo' is the built-in model, as in resolve_model, even where the working folder holds a demo/ folder
    if str(path_or_config) == "demo" or not path.exists():
        from ftwiz.core.models import resolve_model

        try:
            path = resolve_model(str(path_or_config))
        except FtwizError:
            if not allow_download or str(path_or_config).count("/") != 1:
                raise
            path = _download_config(str(path_or_config))
    config_path = path / "config.json" if path.is_dir() else path
    return spec_from_config(read_config(config_path), str(config_path))


def _download_config(repo_id: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, "config.json"))
    except Exception as exc:  # offline, gated, or no such repo: all user-fixable
        raise FtwizError(f"cannot download config.json of {repo_id}: {exc}",
                         fix="check the id and your connection (gated models need `hf auth login` first)") from None
