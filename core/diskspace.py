"""Free disk space: checked before a job writes, and named clearly when the disk fills anyway.

Jobs know what they will write (the merge: the base's weights; the export: bits per weight times
parameters; data: the serialised records). :func:`require_free` refuses before the first byte with the
numbers, the file system and where space can be found. When the disk still fills during the write (other
programs write too, estimates are estimates), :func:`disk_full_error` turns ENOSPC into an
:class:`FtwizError` naming the file system and the space needed; :mod:`ftwiz.core.atomic` removes the
partial output, and earlier results (checkpoints, a merged model) are left untouched.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ftwiz.core.errors import FtwizError, Location

# Headroom above the estimate: file system metadata, index files, tokenizer copies, other writers.
MARGIN_FRACTION, MARGIN_BYTES = 0.02, 2**20
DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(FtwizError):
    """Not enough space on a file system, found before writing or when a write failed with ENOSPC."""


def human_bytes(n: float | int | None) -> str:
    """1.5 GiB, 312.0 MiB, 12 B: binary units, as the CLI and the wizard show sizes; "-" when unknown."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def existing_ancestor(path: str | Path) -> Path:
    """``path`` itself or its nearest existing parent (an output folder may not exist yet)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_point(path: str | Path) -> Path:
    """The mount point of the file system holding ``path`` (what ``df`` shows in its last column)."""
    path = existing_ancestor(path)
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged writer can still use on ``path``'s file system."""
    return shutil.disk_usage(existing_ancestor(path)).free


def _where_to_free(mount: Path) -> str:
    return (f"free space on {mount} (`ftwiz clean {mount}` removes leftovers of interrupted jobs; old runs' "
            "merged/ and export/ folders and the Hugging Face cache are usually the biggest), "
            "or write to another drive (--out)")


def require_free(path: str | Path, needed: int, what: str) -> None:
    """Raise :class:`DiskFullError` unless ``path``'s file system has ``needed`` bytes plus headroom.

    ``what`` names the output in the message ("the merged model", "2 GGUF files").
    """
    want = int(needed * (1 + MARGIN_FRACTION)) + MARGIN_BYTES
    free = free_bytes(path)
    if free >= want:
        return
    mount = mount_point(path)
    raise DiskFullError(f"{what} needs {human_bytes(want)} on {mount} ({human_bytes(needed)} plus headroom), "
                        f"only {human_bytes(free)} is free; nothing was written",
                        where=Location(file=path), fix=_where_to_free(mount))


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library wrapped it (safetensors' IoError, llama.cpp's status + log)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        text = str(exc)
        if "No space left on device" in text or "StorageFull" in text or "Disk quota exceeded" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def nearly_full(path: str | Path, below: int = 2**20) -> bool:
    """Under ``below`` bytes left: how a failed write is recognised when a C library hid the errno
    (llama.cpp's quantizer reports only "iostream error")."""
    try:
        return free_bytes(path) < below
    except OSError:
        return False


def disk_full_error(path: str | Path, needed: int | None = None, written: int = 0) -> DiskFullError:
    """The error for a write that hit a full disk at ``path`` after ``written`` bytes (partial removed)."""
    mount = mount_point(path)
    need = f"; the output needs about {human_bytes(needed)}" if needed else ""
    return DiskFullError(f"the disk filled up while writing {Path(path).name}: file system {mount} was full "
                         f"after {human_bytes(written)}{need} ({human_bytes(free_bytes(path))} free now that "
                         "the unfinished file is removed; earlier results were kept)",
                         where=Location(file=path), fix=_where_to_free(mount))
