"""A first export's vocabulary read in a forked process while the export itself starts up.

A byte-level BPE vocabulary that is not in the cache yet (:mod:`ftwiz.core.export.vocab_cache`) costs ~0.2 CPU-s
to read for Qwen2's 151k tokens (:mod:`ftwiz.core.export.vocab_raw`, :mod:`ftwiz.core.export.merges_raw`),
and the export needs it only after ~0.3 s of single-threaded start-up (importing numpy and gguf-py, reading
the safetensors headers). On Linux a child forked at the start fills the cache on another core; the export
then reads the vocabulary from the cache (~15 ms) instead of reading it itself.

Best effort, never a different result: the child only writes the cache file (under a temporary name, renamed
when whole), and whatever it did not do — it failed, was killed, the cache cannot be written, it took longer
than :data:`WAIT_S` — the export does itself as before. Not forked: on other systems (no fork, or not a safe
one), on one core, for tokenizers the cache does not hold (SentencePiece), when the cache has the vocabulary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

WAIT_S = 20.0  # the child's read takes ~0.2 s; past this, something is wrong: kill it, read in-process
_children: dict[tuple[Path, int], int] = {}  # (tokenizer folder, embedding rows) -> child pid


def _should_fork(model_dir: Path) -> tuple[Path, int] | None:
    """(folder, rows) when a child would fill a cache entry that is missing, else None."""
    if sys.platform != "linux" or (os.cpu_count() or 1) < 2 or os.environ.get("FTWIZ_NO_FORK"):
        return None
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab_cache import cache_key, cached_file

    try:
        if not (model_dir / "tokenizer.json").is_file() or not (model_dir / "config.json").is_file():
            return None
        n_vocab = model_params(model_dir).vocab_size
        key = cache_key(model_dir, n_vocab)
        path = cached_file(key) if key is not None else None
        return None if path is None or path.is_file() else (model_dir, n_vocab)
    except (OSError, FtwizError, RuntimeError, ValueError, KeyError, TypeError):  # the export reports these
        return None


def _child(model_dir: Path, n_vocab: int) -> None:
    """In the forked process: fill the cache entry, then leave without running the parent's exit handlers."""
    code = 1
    try:
        import gc

        gc.disable()  # a short-lived process: the collector would only cost time
        from ftwiz.core.export.vocab_cache import read_vocab

        read_vocab(model_dir, n_vocab)
        code = 0
    except BaseException:  # noqa: BLE001 - Ctrl-C included: the parent reads the vocabulary itself
        pass
    finally:
        os._exit(code)


@contextlib.contextmanager
def vocab_ahead(model_dir: str | Path) -> Iterator[None]:
    """While the block runs, a forked child may fill ``model_dir``'s vocabulary cache entry; the block's first
    :func:`wait_for` of that folder waits for it. On leaving, a child still running is stopped and reaped."""
    found = _should_fork(Path(model_dir))
    pid = None
    if found is not None:
        try:
            with warnings.catch_warnings():  # Python >= 3.12 warns about fork in a threaded process: the child
                warnings.simplefilter("ignore", DeprecationWarning)  # runs only this module's code and exits
                pid = os.fork()
        except OSError as exc:  # no memory or process slots: read in-process
            log.debug("vocabulary not read ahead: %s", exc)
        if pid == 0:
            _child(*found)
        if pid is not None:
            _children[found] = pid
    try:
        yield
    finally:
        if found is not None and _children.pop(found, None) is not None:
            _stop(pid)


def wait_for(model_dir: str | Path, n_vocab: int) -> None:
    """Wait (at most :data:`WAIT_S`) for a child filling this folder's cache entry, if one runs."""
    pid = _children.pop((Path(model_dir), n_vocab), None)
    if pid is None:
        return
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                time.sleep(0.002)
                continue
        return
    log.debug("vocabulary child %d took over %.0f s: stopped", pid, WAIT_S)
    _stop(pid)


def _stop(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
