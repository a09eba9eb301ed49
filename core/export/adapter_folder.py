"""A LoRA adapter folder given where a model goes (``ftwiz export ADAPTER``, ``--check``): said as such, with the
two commands that export it. It was "has no config.json, so it is not a Hugging Face model folder; point at the
folder that contains config.json", which left the user to guess that an adapter needs merging first."""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.adapter_config import is_adapter_dir
from ftwiz.core.errors import FtwizError


def refuse_adapter_folder(source: str | Path) -> None:
    """Raise FtwizError when ``source`` is a peft adapter folder (adapter_config.json, no config.json)."""
    folder = Path(source)
    if is_adapter_dir(folder) and not (folder / "config.json").is_file():
        merged = folder.parent / f"{folder.name}-merged"
        raise FtwizError(f"{folder} is a LoRA adapter, not a model: it has to be merged into its base model first",
                         fix=f"ftwiz merge {folder} --out {merged} && ftwiz export {merged}; or keep it an adapter: "
                             f"ftwiz export {folder} --adapter-only")
