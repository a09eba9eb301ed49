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
