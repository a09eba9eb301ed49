"""A copy of a tiny model with chosen weights planted (the export's range checks: float16 and Q8_0 overflow)."""

from __future__ import annotations

import shutil
from pathlib import Path


def model_with(tiny: Path, folder: Path, values: list, dtype: str) -> tuple[Path, dict]:
    """A copy of ``tiny`` stored as ``dtype`` with ``values`` ((tensor name, flat index, value) triples) planted;
    returns it and its tensors (float32 numpy arrays, as stored)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny, folder)
    tensors = load_file(tiny / "model.safetensors")
    for name, index, value in values:
        tensors[name].view(-1)[index] = value
    stored = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in tensors.items()}
    save_file(stored, folder / "model.safetensors", metadata={"format": "pt"})
    return folder, {k: v.float().numpy() for k, v in stored.items()}
