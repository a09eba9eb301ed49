"""A PEFT adapter's ``adapter_config.json``: the one reader (merge, GGUF adapter export, eval, vLLM).

peft writes it with ``save_pretrained``; the keys read here are peft's own names: ``base_model_name_or_path``
(which base the adapter was trained on), ``r`` (the LoRA rank), ``lora_alpha``, ``peft_type``, ``use_dora``,
``use_rslora``, ``rank_pattern`` / ``alpha_pattern``. Only the file is read, never the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter_dir(folder: str | Path) -> bool:
    """Whether ``folder`` holds a PEFT adapter (its ``adapter_config.json``)."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def read_adapter_config(adapter_dir: str | Path) -> dict[str, Any]:
    """The parsed ``adapter_config.json`` of ``adapter_dir``, exactly as peft saved it.

    Raises FtwizError naming the folder when the file is missing (not an adapter folder) and the file and
    line when it is not JSON.
    """
    root = Path(adapter_dir)
    path = root / ADAPTER_CONFIG
    if not path.is_file():
        raise FtwizError(f"no {ADAPTER_CONFIG} in {root}, so it is not a LoRA adapter folder",
                         where=Location(file=root),
                         fix="point at the folder saved by peft (model.save_pretrained), e.g. RUN/adapter")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FtwizError(f"{ADAPTER_CONFIG} is not valid JSON: {exc.msg}",
                         where=Location(file=path, line=exc.lineno),
                         fix="restore adapter_config.json from the training run (or save the adapter again)") from None
    if not isinstance(config, dict):
        raise FtwizError(f"{ADAPTER_CONFIG} is not a JSON object", where=Location(file=path),
                         fix="restore adapter_config.json from the training run")
    return config


def adapter_base_model(adapter_dir: str | Path) -> str | None:
    """``base_model_name_or_path``: the base model the adapter was trained on, as peft recorded it (or None)."""
    base = read_adapter_config(adapter_dir).get("base_model_name_or_path")
    return str(base) if base else None


def adapter_rank(adapter_dir: str | Path, default: int = 8) -> int:
    """The LoRA rank ``r`` (peft's default 8 when the file leaves it out, unless ``default`` says otherwise)."""
    return int(read_adapter_config(adapter_dir).get("r", default))


ADAPTER_WEIGHTS = "adapter_model.safetensors"


def lora_adapter_files(adapter_dir: str | Path) -> tuple[dict[str, Any], Path]:
    """(adapter_config.json's contents, the adapter_model.safetensors path) of a LoRA/DoRA adapter folder.

    The checks merge, GGUF adapter export, ``ftwiz train`` (continuing an adapter) and ``recipe validate`` share:
    the config is JSON (see read_adapter_config), ``peft_type`` is LORA, the weights are safetensors (a pickled
    ``adapter_model.bin`` is never loaded). FtwizError names the file and field.
    """
    root = Path(adapter_dir)
    config = read_adapter_config(root)
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise FtwizError(f"adapter type {peft_type} is not a LoRA adapter (only LoRA/DoRA are merged or continued)",
                         where=Location(file=root / ADAPTER_CONFIG, field="peft_type"),
                         fix="point at a LoRA adapter: one saved by a finetuning_type: lora (or qlora) run, or by "
                             "peft with a LoraConfig")
    weights = root / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickled = (root / "adapter_model.bin").is_file()
        raise FtwizError(f"{ADAPTER_WEIGHTS} is missing" + (" (only a pickled adapter_model.bin)" if pickled else ""),
                         where=Location(file=root),
                         fix="the run may not have finished; ftwiz never loads pickled adapter_model.bin"
                         + ("; re-save it with peft's save_pretrained(dir, safe_serialization=True)" if pickled else ""))
    return config, weights

