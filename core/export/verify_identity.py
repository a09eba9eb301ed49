"""``export --verify`` verdicts that follow a GGUF when it is moved, renamed or copied.

The record beside the file (``<file>.gguf.verify.json``) stays behind when a user runs ``mv model.gguf
~/models/``, and ``chat``/``serve``/``register`` then took a GGUF that failed verification for an unverified
one. So every record is also kept in the data dir (``$FTWIZ_DATA_DIR/verify/<identity>.json``) under the
file's content identity, which a move or a copy keeps and a re-export changes.

Why not write the verdict into the GGUF's own metadata: the key/value section sits in front of the tensor
data, whose start is the end of that section rounded up to the alignment, so adding a key moves every tensor
and means rewriting the whole multi-GB file; and the file would no longer be the bytes that were checked (nor
the blob Ollama already holds under its sha256).

Why not a full sha256: it reads the whole file (seconds per GB) before every ``chat``/``serve``. The identity
reads ~11 MiB whatever the size: the size, the first 8 MiB (header, metadata, tensor index and the first
tensors), the last MiB and 32 blocks of 64 KiB spread evenly between. A re-export that changes only bytes
none of these read would share the identity, so every export drops the stored verdict of the identity it
writes (:func:`forget_verdict`) unless it verifies that file.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.errors import FtwizError
from ftwiz.core.paths import data_dir

HEAD = 8 << 20  # bytes: a 151k-token vocabulary's metadata is ~5 MB; all of it is hashed
TAIL = 1 << 20
BLOCK = 64 << 10
BLOCKS = 32


def content_identity(gguf: str | Path) -> str:
    """``<size>-<sha256 hex of the sampled bytes>`` for the file at ``gguf`` (OSError when it cannot be read).

    Equal for a moved, renamed or copied file; differs when the size, the metadata or any sampled block does.
    """
    path = Path(gguf)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        if size <= HEAD + TAIL + BLOCK * BLOCKS:
            digest.update(handle.read())  # a small file is hashed whole
        else:
            digest.update(handle.read(HEAD))
            step = (size - HEAD - TAIL) // (BLOCKS + 1)
            for i in range(1, BLOCKS + 1):
                handle.seek(HEAD + i * step)
                digest.update(handle.read(BLOCK))
            handle.seek(size - TAIL)
            digest.update(handle.read(TAIL))
    return f"{size}-{digest.hexdigest()}"


def store_path(identity: str) -> Path:
    """Where the verdict for content ``identity`` is kept: ``<data dir>/verify/<identity>.json``."""
    return data_dir() / "verify" / f"{identity}.json"


def stored_record(gguf: str | Path) -> Path | None:
    """The kept record for this file's content, or None (none kept, or the file cannot be read)."""
    try:
        path = store_path(content_identity(gguf))
    except (OSError, FtwizError):  # unreadable file, or a file where the data dir goes
        return None
    return path if path.is_file() else None


def keep_verdict(gguf: str | Path, record_text: str) -> Path | None:
    """Keep ``record_text`` (a verify report's JSON) for this file's content; None when the data dir cannot be
    written (the record beside the file still holds the verdict)."""
    try:
        path = store_path(content_identity(gguf))
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, record_text)
    except (OSError, FtwizError):
        return None


def forget_verdict(gguf: str | Path) -> None:
    """Drop the kept verdict for this file's content: a freshly written, unverified GGUF inherits none."""
    with contextlib.suppress(OSError, FtwizError):
        store_path(content_identity(gguf)).unlink(missing_ok=True)
