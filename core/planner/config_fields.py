"""A config.json's settings under the names the planner reads, as transformers' own config class reads them.

Why: GPT-2-family configs name their sizes ``n_embd``/``n_layer``/``n_head``/``n_positions`` (GPT-2, GPT-J,
CodeGen), ``d_model``/``n_layers``/``n_heads`` (MPT) or ``n_embed`` (BLOOM); transformers maps them onto
``hidden_size`` & co through ``PretrainedConfig.attribute_map`` (BLOOM in its ``__init__``). And a config.json
saved by ``save_pretrained`` leaves out every value equal to its class default: ``tie_word_embeddings`` (True
for GPT-2, BLOOM, OPT, MPT, StarCoder2, Gemma, Falcon...) is missing from many tied models' files, so reading a
missing key as untied counted a second vocab x hidden matrix (GPT-2: 163M for its 124M).

No network and no remote code: ``AutoConfig.for_model`` builds the installed config class from the dict.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# The names the planner reads; filled only from an alias the file itself holds (never from a class default:
# a guessed size would misjudge the fit, so a file with neither name is still refused)
CANONICAL = ("hidden_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings")
# Aliases a config class reads in its __init__ rather than through attribute_map (BloomConfig: n_embed)
INIT_ALIASES = {"n_embed": "hidden_size"}
# For a model type transformers does not know (remote code): what the installed transformers does with it.
# transformers 5's PreTrainedConfig has no tie_word_embeddings default and PreTrainedModel.tie_weights reads a
# missing one as False, so a remote config class that never sets it trains with a separate lm_head (also the
# cautious count: more memory, not less).
TIED_DEFAULT = False


def transformers_config(cfg: dict[str, Any], model_type: str) -> Any | None:
    """transformers' config object for ``cfg`` (None when the model type is unknown or the values are refused)."""
    try:
        # the submodule: safe when wizard workers import transformers at the same time (core/models.py)
        from transformers.models.auto.configuration_auto import AutoConfig

        return AutoConfig.for_model(model_type, **{k: v for k, v in cfg.items() if k != "model_type"})
    except Exception as exc:  # unknown type, an older transformers, or values its class refuses
        log.debug("transformers cannot build a %s config (%s): reading the keys present", model_type, exc)
        return None


def with_canonical_fields(cfg: dict[str, Any], model_type: str) -> dict[str, Any]:
    """``cfg`` plus the canonical names its aliases stand for, and ``tie_word_embeddings`` as transformers'
    config class for ``model_type`` defaults it when the file leaves it out (untied where the type is unknown,
    as transformers 5 loads it).

    Keys the file holds are never changed.
    """
    out = dict(cfg)
    hf = transformers_config(cfg, model_type)
    if hf is not None:
        aliases = dict(getattr(hf, "attribute_map", {}) or {})
        for alias, name in INIT_ALIASES.items():
            aliases.setdefault(name, alias)
        for name in CANONICAL:
            if name not in out and aliases.get(name) in cfg and getattr(hf, name, None) is not None:
                out[name] = getattr(hf, name)
    if "tie_word_embeddings" not in out:
        # values its class refuses: the class default still holds for a missing key
        default = hf if hf is not None else transformers_config({}, model_type)
        out["tie_word_embeddings"] = bool(getattr(default, "tie_word_embeddings", TIED_DEFAULT))
    return out
