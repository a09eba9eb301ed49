"""Write outputs so an interrupted program never leaves a half-written file under the final name.

Everything ftwiz produces (GGUF files, merged shards, reports, recipes) is written to a temporary
name in the same directory and renamed into place when complete: a rename within one file system is
atomic, so readers see either the old file or the whole new one.

Temporary names are ``.NAME.<8 random chars>.partial``. The writing process holds an exclusive
``flock`` on each one; the kernel drops it when the process dies, SIGKILL included. So a partial nobody
holds is a leftover of a killed job: the next write into the same folder removes it (:func:`sweep_partials`),
and ``ftwiz clean`` lists and removes them anywhere (:func:`find_partials`). A write that fills the disk
becomes a :class:`~ftwiz.core.diskspace.DiskFullError` naming the file system, with the partial removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.errors import FtwizError

try:
    import fcntl
except ImportError:  # Windows: no flock, so leftovers are never judged abandoned (kept, not removed)
    fcntl = None  # type: ignore[assignment]

# tempfile's random part is 8 characters of [a-z0-9_]; the F16 intermediate of older versions had no lock.
PARTIAL_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.partial$")
LEGACY_RE = re.compile(r"^\..+-F16\.intermediate\.gguf$")

# What this process finished and what it threw away, for the Ctrl-C message (see core/interrupted.py);
# bounded, since the wizard and training write status files for hours.
COMPLETED: deque[Path] = deque(maxlen=200)
DISCARDED: deque[Path] = deque(maxlen=200)


@dataclass
class Leftover:
    """A partial output of an interrupted job: path, bytes on disk, and whether a live process writes it."""

    path: Path
    size: int
    in_use: bool


def _hold(fd: int) -> int:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def in_use(path: Path) -> bool:
    """True when a live process holds ``path``'s lock (or when that cannot be known)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:  # not ours to judge (another user's file): keep it
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops our probe lock too
    return False


def tree_size(path: Path) -> int:
    """Bytes on disk under ``path`` (a file or a folder), ignoring files that vanish meanwhile."""
    if not path.is_dir() or path.is_symlink():
        with contextlib.suppress(OSError):
            return path.lstat().st_size
        return 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _is_partial_name(name: str) -> bool:
    return bool(PARTIAL_RE.match(name) or LEGACY_RE.match(name))


def remove_leftover(path: Path) -> None:
    """Delete a file or a whole folder, whichever ``path`` is."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # gone already, or not removable: never fail the job over it
            path.unlink()


def find_partials(root: str | Path, *, recursive: bool = True) -> list[Leftover]:
    """Every ``.NAME.<random>.partial`` under ``root`` (files and folders), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        return [Leftover(root, tree_size(root), in_use(root))] if _is_partial_name(root.name) else []
    found: list[Leftover] = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if _is_partial_name(name):
                path = Path(folder) / name
                found.append(Leftover(path, tree_size(path), in_use(path)))
        dirs[:] = [d for d in dirs if not _is_partial_name(d)] if recursive else []
    return sorted(found, key=lambda item: str(item.path))


def sweep_partials(folder: str | Path) -> list[Leftover]:
    """Remove abandoned partials directly in ``folder``; partials of live processes are left alone."""
    removed = []
    for item in find_partials(folder, recursive=False):
        if not item.in_use:
            remove_leftover(item.path)
            removed.append(item)
    return removed


def temp_path_for(final: Path) -> Path:
    """A unique temporary sibling of ``final`` (same directory, so the rename stays atomic), unlocked."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    return Path(name)


def make_parent(final: Path) -> None:
    """Create ``final``'s folder (and its parents); a file in the way or a folder ftwiz may not write to is an
    :class:`FtwizError` naming it, not a traceback. A full disk is left to the disk-full handling."""
    import errno

    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        return
    except (FileExistsError, NotADirectoryError) as exc:
        raise FtwizError(f"cannot create the folder {final.parent}: {exc.filename} is a file, not a folder",
                         fix="choose another output path (--out)") from None
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        problem = "its file system is read-only" if exc.errno == errno.EROFS else "ftwiz may not write there"
    raise FtwizError(f"cannot write into {final.parent}: {problem}",
                     fix="choose a writable output folder (--out), or fix the folder's permissions")


def _temp_file(final: Path) -> tuple[int, str]:
    """``mkstemp`` beside ``final``; a read-only file system found only now is an FtwizError too."""
    import errno

    try:
        return tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise FtwizError(f"cannot write into {final.parent}: {exc.strerror}",
                         fix="choose a writable output folder (--out), or fix the folder's permissions") from None


def _umask() -> int:
    """The process's file-creation mask, read without changing it (``os.umask`` can only set it, and setting
    it even for a moment would give files other threads create meanwhile the wrong mode)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc (macOS): the only portable way to read it
    os.umask(mask)
    return mask


def _publish_mode(tmp: Path, directory: bool) -> None:
    """Give a finished temporary the mode a plain ``open``/``mkdir`` would have: ``mkstemp`` and ``mkdtemp``
    make them private (0600/0700), and a GGUF only its owner can read cannot be served by an Ollama or
    llama.cpp server running as another user."""
    with contextlib.suppress(OSError):
        os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())


def refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FtwizError(
            f"{path} already exists and ftwiz does not overwrite files without asking",
            fix="choose another output path, or pass --overwrite to replace it",
        )


def _folder_in_the_way(final: Path) -> FtwizError:
    return FtwizError(f"{final} is a folder, and ftwiz writes a file there",
                      fix="give a file path: a new name, or one inside that folder")


def _prepare(final: Path, needed: int | None, what: str | None) -> None:
    make_parent(final)
    sweep_partials(final.parent)
    if needed:
        from ftwiz.core.diskspace import require_free

        require_free(final.parent, needed, what or final.name)


def _failed(exc: BaseException, final: Path, tmp: Path, needed: int | None) -> None:
    """Remove ``tmp``; re-raise a full disk as DiskFullError, note an interrupt for the Ctrl-C message."""
    from ftwiz.core.diskspace import DiskFullError, disk_full_error, is_disk_full, nearly_full

    written = tree_size(tmp)
    full = isinstance(exc, Exception) and not isinstance(exc, DiskFullError) and (
        is_disk_full(exc) or nearly_full(final.parent))  # measured before the partial frees its space
    remove_leftover(tmp)
    if isinstance(exc, KeyboardInterrupt):
        DISCARDED.append(final)
    elif full:
        raise disk_full_error(final, needed, written) from exc


@contextlib.contextmanager
def atomic_path(final: str | Path, *, overwrite: bool = False, needed: int | None = None,
                what: str | None = None) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``final``, on failure delete it.

    ``needed`` (bytes, optional) is checked against free space first and named if the disk fills;
    ``what`` names the output in that message.
    """
    from ftwiz.core.pause import pause_point

    final = Path(final)
    refuse_overwrite(final, overwrite)
    _prepare(final, needed, what)
    fd, name = _temp_file(final)
    tmp = Path(name)
    try:
        _hold(fd)
        yield tmp
        pause_point(f"write:{final.name}")
        _publish_mode(tmp, directory=tmp.is_dir())
        try:
            os.replace(tmp, final)
        except IsADirectoryError:  # --overwrite onto a folder: a file cannot replace it
            raise _folder_in_the_way(final) from None
        COMPLETED.append(final)
    except BaseException as exc:
        _failed(exc, final, tmp, needed)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(final: str | Path, *, overwrite: bool = False, needed: int | None = None,
               what: str | None = None) -> Iterator[Path]:
    """Like :func:`atomic_path` for a directory: build it beside the target, then swap it in."""
    from ftwiz.core.pause import pause_point

    final = Path(final)
    refuse_overwrite(final, overwrite)
    _prepare(final, needed, what)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        _hold(fd)
        yield tmp
        pause_point(f"write:{final.name}")
        _publish_mode(tmp, directory=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        COMPLETED.append(final)
    except BaseException as exc:
        _failed(exc, final, tmp, needed)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def scratch_dir(near: str | Path) -> Iterator[Path]:
    """A locked temporary folder beside ``near`` for intermediates (the F16 a K-quant is made from).

    Removed on exit; if the process is killed, it is a partial like any other and the next write there
    sweeps it.
    """
    near = Path(near)
    near.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{near.name}.", suffix=".partial", dir=near.parent))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        _hold(fd)
        yield tmp
    finally:
        os.close(fd)
        remove_leftover(tmp)


def write_text_atomic(final: str | Path, text: str, *, overwrite: bool = True) -> Path:
    final = Path(final)
    if overwrite and final.is_dir():
        raise _folder_in_the_way(final)
    with atomic_path(final, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final
