"""A saved PEFT LoRA/DoRA adapter, read without peft: config, scales and per-module weights.

Merge and adapter-only GGUF export both need "which base tensor does this LoRA pair modify, and by how
much"; reading ``adapter_config.json`` and ``adapter_model.safetensors`` directly lets them stream the base
model instead of instantiating it through peft.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.adapter_config import lora_adapter_files
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.tensors import read_header, read_tensor

PREFIX = "base_model.model."


@dataclass
class LoraModule:
    """The LoRA pieces for one base module (``model.layers.0.self_attn.q_proj``)."""

    module: str
    a: Any = None  # (r, in) for Linear; (r, num_embeddings) for Embedding
    b: Any = None  # (out, r) for Linear; (dim, r) for Embedding
    magnitude: Any = None  # DoRA: (out,)
    embedding: bool = False
    scale: float = 1.0

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass
class Adapter:
    root: Path
    config: dict[str, Any]
    modules: dict[str, LoraModule] = field(default_factory=dict)
    replaced: dict[str, Any] = field(default_factory=dict)  # modules_to_save: base tensor name -> new tensor
    # peft's trainable tokens: base tensor name -> (row indices, their new rows (len(indices), dim))
    rows: dict[str, tuple[list[int], Any]] = field(default_factory=dict)

    @property
    def base_model(self) -> str | None:
        return self.config.get("base_model_name_or_path")

    @property
    def alpha(self) -> float:
        return float(self.config.get("lora_alpha", self.config.get("r", 8)))

    @property
    def use_dora(self) -> bool:
        return bool(self.config.get("use_dora"))


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """peft's rank_pattern/alpha_pattern: a key matches the module name or its dotted suffix."""
    for pattern, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            return value
    return default


def load_adapter(adapter_dir: str | Path) -> Adapter:
    """Read a PEFT LoRA/DoRA adapter folder; raise FtwizError for anything merge cannot apply."""
    root = Path(adapter_dir)
    config, weights = lora_adapter_files(root)
    adapter = Adapter(root=root, config=config)
    refs, _ = read_header(weights)
    with open(weights, "rb") as handle:
        for ref in refs:
            _place(adapter, ref.name, read_tensor(ref, handle), weights)
    for module, lora in list(adapter.modules.items()):
        if lora.a is None or lora.b is None:
            raise FtwizError(f"adapter has only half of the LoRA pair for {module}", where=Location(file=weights),
                             fix="the adapter file is incomplete; save it again from the run")
        r = _pattern_value(config.get("rank_pattern"), module, config.get("r", lora.rank))
        alpha = float(_pattern_value(config.get("alpha_pattern"), module, adapter.alpha))
        lora.scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    _index_token_rows(adapter)
    return adapter


TOKEN_ROWS = ".token_adapter.trainable_tokens_delta"


def _index_token_rows(adapter: Adapter) -> None:
    """Pair each trainable-tokens tensor (held in ``rows`` under its module name by :func:`_place`) with the
    row indices adapter_config.json's ``trainable_token_indices`` gives it: a list (the input embeddings) or a
    {module name or suffix: indices} mapping, as peft reads it."""
    spec = adapter.config.get("trainable_token_indices")
    for module, (_, values) in list(adapter.rows.items()):
        indices = spec
        if isinstance(spec, dict):
            indices = next((v for k, v in spec.items() if module == k or module.endswith(f".{k}")), None)
        if not isinstance(indices, list) or len(indices) != values.shape[0]:
            raise FtwizError(f"adapter has {values.shape[0]} trainable token rows for {module} but "
                             f"trainable_token_indices gives {indices!r}",
                             where=Location(file=adapter.root / "adapter_config.json", field="trainable_token_indices"),
                             fix="save the adapter again from the run, so its config and weights agree")
        del adapter.rows[module]
        adapter.rows[f"{module}.weight"] = ([int(i) for i in indices], values)


def _place(adapter: Adapter, key: str, tensor, file: Path) -> None:
    name = key[len(PREFIX):] if key.startswith(PREFIX) else key
    for marker, attr, emb in ((".lora_A.weight", "a", False), (".lora_B.weight", "b", False),
                              (".lora_embedding_A", "a", True), (".lora_embedding_B", "b", True),
                              (".lora_magnitude_vector.weight", "magnitude", False),
                              (".lora_magnitude_vector", "magnitude", False)):
        if name.endswith(marker):
            module = name[: -len(marker)]
            lora = adapter.modules.setdefault(module, LoraModule(module))
            setattr(lora, attr, tensor)
            lora.embedding = lora.embedding or emb
            return
    if name.endswith(TOKEN_ROWS):  # indices come from the config: _index_token_rows
        adapter.rows[name[: -len(TOKEN_ROWS)]] = ([], tensor)
        return
    if ".original_module." in name:  # peft >= 0.15 also saves the frozen base copy of a modules_to_save module
        return
    if ".modules_to_save." in name:  # older peft: lm_head.modules_to_save.default.weight
        module, _, rest = name.partition(".modules_to_save.")
        adapter.replaced[f"{module}.{rest.split('.', 1)[1] if '.' in rest else rest}"] = tensor
        return
    if "lora_" in name:
        raise FtwizError(f"adapter tensor {key} is a LoRA variant ftwiz cannot merge", where=Location(file=file),
                         fix="merge it with peft's merge_and_unload instead")
    # modules_to_save saved under the base name; ``save_embedding_layers`` stores the (possibly resized)
    # embedding under ``<module>.base_layer.weight``: either way it replaces the base tensor
    adapter.replaced[name.replace(".base_layer.", ".")] = tensor


def lora_delta(lora: LoraModule, fan_in_fan_out: bool = False):
    """scale * B @ A in float32, in the base weight's layout."""
    import torch

    a = lora.a.to(torch.float32)
    b = lora.b.to(torch.float32)
    if lora.embedding:  # peft's Embedding stores A (r, vocab) and B (dim, r): delta is (vocab, dim)
        return (b @ a).T * lora.scale
    delta = (b @ a) * lora.scale
    return delta.T if fan_in_fan_out else delta


def merged_weight(weight, lora: LoraModule, fan_in_fan_out: bool = False):
    """Base weight with the adapter applied, float32 (DoRA rescales each output row to its magnitude)."""
    import torch

    w = weight.to(torch.float32)
    delta = lora_delta(lora, fan_in_fan_out)
    if delta.shape != w.shape:
        raise FtwizError(f"LoRA for {lora.module} has shape {tuple(delta.shape)} but the base weight is "
                         f"{tuple(w.shape)}", fix="merge the adapter into the base model it was trained on (--base)")
    w += delta
    if lora.magnitude is not None:
        rows = w.T if fan_in_fan_out else w
        norm = torch.linalg.vector_norm(rows, dim=1)
        factor = lora.magnitude.to(torch.float32).reshape(-1) / norm
        rows.mul_(factor.unsqueeze(1))
    return w
