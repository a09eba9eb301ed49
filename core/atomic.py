"""Write outputs so an interrupted program never leaves a half-written file under the final name.

Everything ftwiz produces (GGUF files, merged shards, reports, recipes) is written to a temporary
name in the same directory and renamed into place when complete: a rename within one file system is
atomic, so readers see either the old file or the whole new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ftwiz.core.errors import FtwizError


def temp_path_for(final: Path) -> Path:
    """A unique temporary sibling of ``final`` (same directory, so the rename stays atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    return Path(name)


def refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FtwizError(
            f"{path} already exists and ftwiz does not overwrite files without asking",
            fix="choose another output path, or pass --overwrite to replace it",
        )


@contextlib.contextmanager
def atomic_path(final: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``final``, on failure delete it."""
    final = Path(final)
    refuse_overwrite(final, overwrite)
    tmp = temp_path_for(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(final: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Like :func:`atomic_path` for a directory: build it beside the target, then swap it in."""
    final = Path(final)
    refuse_overwrite(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(final: str | Path, text: str, *, overwrite: bool = True) -> Path:
    final = Path(final)
    with atomic_path(final, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final
