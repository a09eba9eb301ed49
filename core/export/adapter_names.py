"""An adapter's module names in the base checkpoint's own spelling.

peft names an adapter's tensors after the modules of the model in memory, and transformers renames some
checkpoints' tensors when it loads them: Gemma 3 image-text models (4B and larger) are stored as
``language_model.model.layers.0...`` (and ``vision_tower.``, ``multi_modal_projector.``,
``language_model.lm_head.``) but held as ``model.language_model.layers.0...``, so their adapters say
``model.language_model.layers.0.self_attn.q_proj``. The merge streams the checkpoint's tensors, so it renames
the adapter's names to the checkpoint's before matching them.
"""

from __future__ import annotations

from collections.abc import Collection

from ftwiz.core.export.adapter import Adapter

# (in memory, on disk) prefixes, both ways: transformers 5 saves some checkpoints in either layout
_ALIASES = (("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
            ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head."))


def checkpoint_name(name: str, names: Collection[str]) -> str:
    """``name`` as the checkpoint spells it: itself when present in ``names``, else its alias that is."""
    if name in names:
        return name
    for memory, disk in _ALIASES:
        for a, b in ((memory, disk), (disk, memory)):
            if name.startswith(a) and (alias := b + name[len(a):]) in names:
                return alias
    return name


def rename_to_checkpoint(adapter: Adapter, names: Collection[str]) -> None:
    """Rename ``adapter``'s modules, replaced tensors and token rows in place to the spelling of ``names``
    (the base checkpoint's tensor names); names found under neither spelling stay as they are."""
    modules = {}
    for module, lora in adapter.modules.items():
        renamed = checkpoint_name(f"{module}.weight", names).removesuffix(".weight")
        lora.module = renamed
        modules[renamed] = lora
    adapter.modules = modules
    adapter.replaced = {checkpoint_name(k, names): v for k, v in adapter.replaced.items()}
    adapter.rows = {checkpoint_name(k, names): v for k, v in adapter.rows.items()}
