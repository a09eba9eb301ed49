"""Disk space for training: checked before the first step, and a full disk mid-checkpoint cleaned up.

The Trainer writes ``checkpoint-N/`` in place (weights, optimizer, scheduler, RNG, then
``trainer_state.json`` last), so a kill or a full disk mid-save leaves a folder without
``trainer_state.json``. Resume already skips such folders; here they are also removed, so they neither
leak disk space nor get mistaken for a good checkpoint later. Complete checkpoints are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ftwiz.core.diskspace import DiskFullError, disk_full_error, is_disk_full, require_free

# Bytes per trainable parameter on disk during a run: the checkpoint's fp32 weights (4) and AdamW's two
# fp32 moments (8), plus the final adapter/model (4). Frozen base weights are never saved by LoRA/QLoRA.
BYTES_PER_TRAINABLE = 16


def incomplete_checkpoints(checkpoints: Path) -> list[Path]:
    """``checkpoint-N`` folders a kill or a full disk interrupted (no ``trainer_state.json``)."""
    if not checkpoints.is_dir():
        return []
    return sorted(p for p in checkpoints.glob("checkpoint-*") if p.is_dir() and not (p / "trainer_state.json").exists())


def drop_incomplete_checkpoints(checkpoints: Path) -> list[Path]:
    """Remove interrupted checkpoint folders; return what was removed."""
    dropped = incomplete_checkpoints(checkpoints)
    for path in dropped:
        shutil.rmtree(path, ignore_errors=True)
    return dropped


def require_checkpoint_space(run_root: Path, trainable: int) -> None:
    """Refuse to start when one checkpoint plus the final output cannot fit next to the run."""
    require_free(run_root, trainable * BYTES_PER_TRAINABLE, "a checkpoint and the trained adapter/model")


def disk_full_in_training(exc: BaseException, run_root: Path, checkpoints: Path,
                          trainable: int | None) -> DiskFullError | None:
    """When ``exc`` is a full disk: remove the half-saved checkpoint and return the error to raise."""
    if isinstance(exc, DiskFullError) or not is_disk_full(exc):
        return None
    drop_incomplete_checkpoints(checkpoints)
    error = disk_full_error(checkpoints if checkpoints.is_dir() else run_root,
                            trainable * BYTES_PER_TRAINABLE if trainable else None)
    return DiskFullError(error.what + "; complete checkpoints were kept, so `ftwiz train --resume` continues "
                         "once there is space", where=error.where, fix=error.fix)
