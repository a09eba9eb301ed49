"""ModelSpec: the shape facts of a model read from its config.json, and its parameter counts by part.

Counts are exact for the supported architectures (llama, mistral, qwen2, qwen3, gemma 1-3, phi3, phi,
gpt_neox, stablelm, falcon, the GPT-2 family gpt2, opt, mpt, bloom, gptj, codegen (``gpt2_family.py``), and the
mixture-of-experts mixtral, qwen2_moe, qwen3_moe); unknown model types are estimated from the generic fields with
a warning. Fields are read by transformers' names, aliases mapped as its config classes map them
(``config_fields.py``: n_embd -> hidden_size, a missing tie_word_embeddings -> the class default).

Mixture-of-experts: every expert's weights are in memory, though each token runs only ``experts_per_token``
of them (Mixtral-8x7B: 46.7B parameters, not the 7.2B of one dense block stack). In transformers 5 the
experts are 3-D ``nn.Parameter`` tensors (``MixtralExperts.gate_up_proj``/``down_proj``), not ``nn.Linear``:
bitsandbytes' 4-bit replacement (``replace_with_bnb_linear``: ``type(module) is nn.Linear``) leaves them 16-bit
and peft's ``all-linear`` does not adapt them. ``expert_params`` counts them apart from ``block_linear_params``
(the ``nn.Linear`` weights: attention, a shared expert, dense-MLP layers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.model_config import language_config, read_config
from ftwiz.core.planner import gpt2_family
from ftwiz.core.planner.config_fields import with_canonical_fields
from ftwiz.core.planner.towers import tower_params
from pydantic import BaseModel, Field

GATED_MLP = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text", "phi3", "mixtral",
             "qwen2_moe", "qwen3_moe", "stablelm"}
UNGATED_MLP = {"phi", "gpt_neox", "starcoder2", "falcon"} | gpt2_family.FAMILY
# config.json fields of layers that are not attention + MLP (Mamba/SSM, linear attention, conv, MLA)
UNMODELLED_LAYER_FIELDS = ("mamba_", "ssm_", "layers_block_type", "block_types", "attn_layer_", "linear_num_",
                           "kv_lora_rank", "lru_width", "conv_L_cache")
# Gemma 2/3 blocks norm before and after both attention and MLP: four RMSNorms per block
SANDWICH_NORMS = {"gemma2", "gemma3", "gemma3_text"}
# LayerNorm (weight and bias) rather than RMSNorm; StableLM (1.6B/3B/12B: StableLmMLP) has a gated MLP with it
LAYER_NORM = UNGATED_MLP | {"stablelm"}
# Model classes whose transformers implementation has ``_supports_sdpa = False`` (Gemma 2: "sdpa does not
# support softcapping"): loading them without attn_implementation, as ftwiz's training does, falls back to
# eager attention, which keeps each layer's heads x seq x seq attention probabilities for backward.
NO_SDPA = {"gemma2", "gpt_oss"}
# The nn.Linear module names of architectures that fuse or rename the canonical projections (what peft's
# target_modules and a recipe's lora_target must name), each with the canonical pieces it holds.
_QKV = ("q_proj", "k_proj", "v_proj")
MODULE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "phi3": {"qkv_proj": _QKV, "o_proj": ("o_proj",), "gate_up_proj": ("gate_proj", "up_proj"),
             "down_proj": ("down_proj",)},
    "phi": {"q_proj": ("q_proj",), "k_proj": ("k_proj",), "v_proj": ("v_proj",), "dense": ("o_proj",),
            "fc1": ("fc1",), "fc2": ("fc2",)},
    "starcoder2": {"q_proj": ("q_proj",), "k_proj": ("k_proj",), "v_proj": ("v_proj",), "o_proj": ("o_proj",),
                   "c_fc": ("fc1",), "c_proj": ("fc2",)},
    "gpt_neox": {"query_key_value": _QKV, "dense": ("o_proj",), "dense_h_to_4h": ("fc1",), "dense_4h_to_h": ("fc2",)},
}
MODULE_NAMES["falcon"] = MODULE_NAMES["gpt_neox"]
MODULE_NAMES.update(gpt2_family.MODULE_NAMES)
# Model types whose linears are nn.Linear subclasses (FalconLinear): transformers' bitsandbytes replacement
# takes only ``type(module) is nn.Linear``, so under QLoRA they stay 16-bit (peft's all-linear still adapts them).
NOT_QUANTIZED = {"falcon"}
# Model types whose config class ties lm_head to the embeddings by default: their config.json omits the key
TIED_BY_DEFAULT = ("gemma", "falcon")
QKV_BIAS = {"qwen2", "qwen2_moe", "phi", "gpt_neox", "starcoder2"}  # StableLM says so in use_qkv_bias
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
    sdpa: bool = Field(True, description="transformers runs it with SDPA by default (else eager: NO_SDPA)")
    quantizable: bool = Field(True, description="4-bit loading quantizes the block linears (else NOT_QUANTIZED)")
    attn_softcap: bool = Field(False, description="attn_logit_softcapping: tanh over the attention scores")
    final_logit_softcap: bool = Field(False, description="final_logit_softcapping: tanh over the logits")
    # Mixture-of-experts (0 for dense models): routed experts per MoE layer, experts each token runs, an
    # expert's intermediate size, and how many layers are MoE (the others have a dense MLP of
    # ``dense_intermediate_size``). ``intermediate_size`` is then the shared expert's (0: none).
    num_experts: int = 0
    experts_per_token: int = 0
    expert_intermediate_size: int = 0
    moe_layers: int = 0
    dense_intermediate_size: int = 0
    # An image-text checkpoint's vision encoder and projector (towers.py): loaded, never run on text.
    tower_params: int = 0
    tower_linear_params: int = Field(0, description="the towers' nn.Linear weights, stored NF4 under QLoRA")
    tower_layers: int = 0
    tower_linear_shapes: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="(in, out) of each nn.Linear in one tower layer: LoRA targets them too")
    # GPT-2 family (gpt2_family.py): what the llama-shaped count leaves out
    extra_params: int = Field(0, description="position tables, linear and lm_head biases, projections: 16-bit")
    embed_dim: int = Field(0, description="embedding width when it differs from hidden_size (OPT); 0: hidden")
    norm_bias: bool = Field(True, description="LayerNorms carry a bias (MPT's no_bias: none)")
    final_norm: bool = Field(True, description="a final norm after the blocks (OPT post-LN: none)")
    architecture: str = Field("", description="config.json's architectures[0], e.g. GPT2LMHeadModel")
    outer_linear_shapes: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="(in, out) of nn.Linear outside the blocks that all-linear adapts (OPT's "
                                          "project_in/project_out); lm_head is never adapted")

    # --- per-part parameter counts -----------------------------------------------------------
    @property
    def q_out(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_out(self) -> int:
        return self.num_kv_heads * self.head_dim

    def _mlp_shapes(self, i: int) -> dict[str, tuple[int, int]]:
        h = self.hidden_size
        if not i:
            return {}
        if self.gated_mlp:
            return {"gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
        return {"fc1": (h, i), "fc2": (i, h)}

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each ``nn.Linear`` in one block, by module name (an MoE block's
        MLP linears are its shared expert's; none when it has none)."""
        return self._attention_shapes() | self._mlp_shapes(self.intermediate_size)

    def module_names(self) -> dict[str, tuple[str, ...]]:
        """The block's nn.Linear module names as the model names them -> the canonical projections each holds."""
        canonical = self.linear_shapes()
        names = MODULE_NAMES.get(self.model_type) or {name: (name,) for name in canonical}
        return {name: pieces for name, pieces in names.items() if all(piece in canonical for piece in pieces)}

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each nn.Linear by its real name (a fused one: the pieces' outputs)."""
        canonical = self.linear_shapes()
        return {name: (canonical[pieces[0]][0], sum(canonical[piece][1] for piece in pieces))
                for name, pieces in self.module_names().items()}

    def _attention_shapes(self) -> dict[str, tuple[int, int]]:
        h = self.hidden_size
        return {"q_proj": (h, self.q_out), "k_proj": (h, self.kv_out), "v_proj": (h, self.kv_out),
                "o_proj": (self.q_out, h)}

    @property
    def block_linear_params(self) -> int:
        attention = sum(a * b for a, b in self._attention_shapes().values())
        bias = (self.q_out + 2 * self.kv_out) if self.qkv_bias else 0
        mlp = sum(a * b for a, b in self._mlp_shapes(self.intermediate_size).values())
        if not self.num_experts:
            return self.num_layers * (attention + bias + mlp)
        dense = sum(a * b for a, b in self._mlp_shapes(self.dense_intermediate_size).values())
        return self.num_layers * (attention + bias) + self.moe_layers * mlp + (self.num_layers - self.moe_layers) * dense

    @property
    def expert_params(self) -> int:
        """The routed experts and their router, in all MoE layers (0 for a dense model)."""
        per_expert = sum(a * b for a, b in self._mlp_shapes(self.expert_intermediate_size).values())
        return self.moe_layers * self.num_experts * (per_expert + self.hidden_size)

    @property
    def norm_params(self) -> int:
        per_norm = self.hidden_size * (1 if self.rms_norm or not self.norm_bias else 2)  # LayerNorm has a bias
        return self.num_layers * self.norms_per_block * per_norm + (per_norm if self.final_norm else 0)

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * (self.embed_dim or self.hidden_size)

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tied_embeddings else self.embedding_params

    @property
    def total_params(self) -> int:
        return (self.block_linear_params + self.expert_params + self.norm_params + self.embedding_params
                + self.lm_head_params + self.tower_params + self.extra_params)

    @property
    def active_params(self) -> int:
        """Parameters a text token runs through (what compute time scales with): a mixture of experts runs
        experts_per_token of its experts (Mixtral-8x7B: 12.9B of 46.7B), a vision tower none."""
        routed = self.expert_params * self.experts_per_token // self.num_experts if self.num_experts else 0
        return self.total_params - self.expert_params - self.tower_params + routed

    def parts(self) -> dict[str, int]:
        return {"embeddings": self.embedding_params, "lm_head": self.lm_head_params,
                "block_linears": self.block_linear_params, "norms": self.norm_params,
                **({"experts": self.expert_params} if self.num_experts else {}),
                **({"positions_biases_projections": self.extra_params} if self.extra_params else {}),
                **({"vision_tower": self.tower_params} if self.tower_params else {})}


def spec_from_config(config: dict[str, Any], source: str = "config.json") -> ModelSpec:
    if not isinstance(config, dict):
        raise FtwizError("config.json does not hold a JSON object of settings", where=Location(file=source),
                         fix="give the model's own config.json (AutoConfig.from_pretrained(...).save_pretrained)")
    cfg = language_config(config)  # image-text models: the language model's settings, defaults filled in
    model_type = str(config.get("model_type", "unknown"))
    if cfg is config:  # a text model: its aliases (n_embd...) and class defaults (tie_word_embeddings)
        cfg = with_canonical_fields(config, model_type)
    warnings = []
    try:
        hidden = int(cfg["hidden_size"])
        layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
        if min(hidden, layers, heads) < 1:
            raise ValueError("hidden_size, num_hidden_layers and num_attention_heads must be at least 1")
    except (KeyError, TypeError, ValueError) as exc:
        raise FtwizError(f"config lacks a required field: {exc}", where=Location(file=source),
                         fix="give the model's full config.json (hidden_size, num_hidden_layers, ...)") from None
    known = model_type in GATED_MLP | UNGATED_MLP
    unmodelled = sorted(k for k in cfg if k.startswith(UNMODELLED_LAYER_FIELDS))
    if not known and unmodelled:  # layers of another kind than attention + MLP: the +/-20% would be a guess
        warnings.append(f"unknown model type '{model_type}' with layers the planner does not model ({unmodelled[0]}: "
                        "state-space, linear or latent attention): the estimate may be off by half or more; "
                        "measure it with `ftwiz plan --probe` before a long run")
    elif not known:
        warnings.append(f"unknown model type '{model_type}': estimated from generic fields; expect +/-20%")
    gated = model_type in GATED_MLP or (not known and "intermediate_size" in cfg and model_type not in UNGATED_MLP)
    intermediate = int(cfg.get("intermediate_size") or cfg.get("ffn_hidden_size") or cfg.get("n_inner") or 4 * hidden)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    moe = _moe_fields(cfg, layers, intermediate)
    if moe:
        intermediate = moe.pop("shared_intermediate")
    if model_type in gpt2_family.FAMILY:
        intermediate = gpt2_family.intermediate_size(cfg, model_type, hidden)
    family = gpt2_family.family_fields(cfg, model_type, hidden, layers, intermediate)
    towers = tower_params(config, hidden)
    tower_warning = towers.pop("warning")
    warnings += [tower_warning] if tower_warning else []
    return ModelSpec(
        model_type=model_type, hidden_size=hidden, intermediate_size=intermediate, num_layers=layers,
        num_heads=heads, num_kv_heads=_kv_heads(cfg, model_type, heads), head_dim=head_dim,
        vocab_size=int(cfg.get("vocab_size") or _missing("vocab_size", source)),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", model_type.startswith(TIED_BY_DEFAULT))),
        gated_mlp=gated, qkv_bias=model_type not in gpt2_family.FAMILY and bool(
            cfg.get("attention_bias", cfg.get("use_qkv_bias", model_type in QKV_BIAS))),
        max_position_embeddings=cfg.get("max_position_embeddings"), warnings=warnings,
        rms_norm=model_type not in LAYER_NORM if known else gated, **moe,
        norms_per_block=_norms_per_block(cfg, model_type), quantizable=model_type not in NOT_QUANTIZED,
        sdpa=model_type not in NO_SDPA, attn_softcap=bool(cfg.get("attn_logit_softcapping")),
        final_logit_softcap=bool(cfg.get("final_logit_softcapping")), **towers,
        architecture=str((config.get("architectures") or [""])[0]), **family,
    )


def _kv_heads(cfg: dict[str, Any], model_type: str, heads: int) -> int:
    """Key/value heads. Falcon before its new decoder architecture (7B) is multi-query: one, whatever
    num_kv_heads says (FalconAttention); the new architecture (40B, 180B) reads num_kv_heads."""
    if model_type == "falcon" and not cfg.get("new_decoder_architecture"):
        return 1 if cfg.get("multi_query", True) else heads
    return int(cfg.get("num_key_value_heads") or cfg.get("num_kv_heads") or heads)


def _norms_per_block(cfg: dict[str, Any], model_type: str) -> int:
    """phi's, GPT-J's, CodeGen's and Falcon-7B's parallel blocks share one norm; Gemma 2/3 have four; the rest two."""
    if model_type in {"phi", *gpt2_family.PARALLEL_BLOCK} or (
            model_type == "falcon" and not cfg.get("new_decoder_architecture")):
        return 1
    return 4 if model_type in SANDWICH_NORMS else 2


def _moe_fields(cfg: dict[str, Any], layers: int, intermediate: int) -> dict[str, int]:
    """A mixture-of-experts config's expert fields (empty for a dense model), by the names transformers'
    configs use: num_local_experts (mixtral, phimoe, gpt_oss), num_experts (qwen2_moe, qwen3_moe, olmoe),
    n_routed_experts (deepseek); moe_intermediate_size where an expert is narrower than the dense MLP."""
    experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 0)
    if experts <= 1:
        return {}
    expert_i = int(cfg.get("moe_intermediate_size") or intermediate)
    shared = int(cfg.get("shared_expert_intermediate_size") or int(cfg.get("n_shared_experts") or 0) * expert_i)
    step = int(cfg.get("decoder_sparse_step") or 1)
    dense_only = set(cfg.get("mlp_only_layers") or []) | set(range(int(cfg.get("first_k_dense_replace") or 0)))
    moe_layers = sum(1 for n in range(layers) if n not in dense_only and (n + 1) % step == 0)
    # not top_k: older config.json files carry generation's top_k (50), which is no expert count
    return {"num_experts": experts, "experts_per_token": int(cfg.get("num_experts_per_tok") or 2),
            "expert_intermediate_size": expert_i, "moe_layers": moe_layers, "dense_intermediate_size": intermediate,
            "shared_intermediate": shared}


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
