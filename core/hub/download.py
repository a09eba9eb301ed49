"""One file into the Hugging Face cache, resumable across cancels and dropped connections.

huggingface-hub (2.x) resumes a dropped connection within one call (HTTP Range), but deletes a partial
file when the call ends, so a cancelled 4 GB shard would start over. Here the bytes go to
``blobs/<etag>.incomplete`` (the name older huggingface-hub versions resumed from) through
huggingface-hub's own ``http_get`` with ``resume_size``; the finished blob is then linked into
``snapshots/<commit>/`` by ``hf_hub_download`` itself, so the cache layout stays the library's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.hub.listing import HubFile
from ftwiz.core.hub.progress import PullCancelled


class _Quiet:
    """A tqdm stand-in for huggingface-hub: our own progress reports the bytes."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: float | None = 1) -> None:
        pass


class _CountingFile:
    """The partial file as http_get sees it: each write is counted, and refused once cancelled."""

    def __init__(self, fh, on_size: Callable[[int], None], cancelled: Callable[[], bool]) -> None:
        self.fh, self.on_size, self.cancelled = fh, on_size, cancelled

    def write(self, chunk: bytes) -> int:
        if self.cancelled():
            raise PullCancelled("download cancelled; what arrived is kept",
                                fix="run the same command again: the download resumes where it stopped")
        written = self.fh.write(chunk)
        self.fh.flush()  # what was received survives a kill: the next pull resumes from it
        self.on_size(self.fh.tell())
        return written

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        # the server ignored our Range and sent the whole file: the count starts over with it
        result = self.fh.truncate(size)
        self.on_size(self.fh.tell() if size is None else size)
        return result


def _accepted(fn, **kwargs) -> dict:
    """The keyword arguments ``fn`` takes: ``tqdm_class`` came to huggingface-hub's download functions late."""
    import inspect

    params = inspect.signature(fn).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def storage_folder(cache_dir: Path, repo_id: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model")


def pointer_path(cache_dir: Path, repo_id: str, commit: str, name: str) -> Path:
    return storage_folder(cache_dir, repo_id) / "snapshots" / commit / name


def partial_bytes(cache_dir: Path, repo_id: str, etags: set[str] | None = None) -> int:
    """Bytes of unfinished downloads of ``repo_id`` kept for resuming (of the blobs ``etags`` when given: an
    LFS file's etag is its sha256, so a partial file of an older version is not counted as progress)."""
    blobs = storage_folder(cache_dir, repo_id) / "blobs"
    if not blobs.is_dir():
        return 0
    return sum(p.stat().st_size for p in blobs.glob("*.incomplete")
               if etags is None or p.name.removesuffix(".incomplete") in etags)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(repo_id: str, file: HubFile, commit: str, *, cache_dir: Path, endpoint: str,
                  on_size: Callable[[int], None], cancelled: Callable[[], bool]) -> Path:
    """``file`` of ``repo_id`` at ``commit`` into the cache; its path under ``snapshots/<commit>/``.

    ``on_size(bytes_so_far)`` is called as bytes arrive (a resumed file starts at its partial size);
    ``cancelled()`` is polled per chunk and raises PullCancelled, keeping the partial file.
    """
    from ftwiz.core.hub.errors import hub_error
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    pointer = pointer_path(cache_dir, repo_id, commit, file.name)
    if pointer.exists():
        return pointer
    try:
        meta = get_hf_file_metadata(hf_hub_url(repo_id, file.name, revision=commit, endpoint=endpoint),
                                    endpoint=endpoint)
        if not meta.etag:
            raise FtwizError(f"the hub at {endpoint} gave no ETag for {file.name}",
                             fix="the endpoint may not be a Hugging Face Hub (check HF_ENDPOINT)")
        blob = storage_folder(cache_dir, repo_id) / "blobs" / meta.etag
        if not blob.exists():
            _fetch_blob(blob, meta, file, on_size, cancelled, build_hf_headers(), http_get)
        on_size(blob.stat().st_size)
        # the blob is there, so this only links snapshots/<commit>/<name> to it (one HEAD request)
        return Path(hf_hub_download(repo_id, file.name, revision=commit, cache_dir=cache_dir, endpoint=endpoint,
                                    **_accepted(hf_hub_download, tqdm_class=_Quiet)))
    except (PullCancelled, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise hub_error(exc, repo_id, commit) from None


def _fetch_blob(blob: Path, meta, file: HubFile, on_size, cancelled, headers, http_get) -> None:
    blob.parent.mkdir(parents=True, exist_ok=True)
    partial = blob.with_name(blob.name + ".incomplete")
    expected = meta.size if meta.size is not None else file.size
    have = partial.stat().st_size if partial.exists() else 0
    if expected is not None and have > expected:  # not ours, or from another version of the file
        partial.unlink()
        have = 0
    with open(partial, "ab") as fh:
        on_size(have)
        http_get(meta.location, _CountingFile(fh, on_size, cancelled), resume_size=have, headers=headers,
                 expected_size=expected, displayed_filename=file.name, **_accepted(http_get, tqdm_class=_Quiet))
    # A file stitched from two sessions is checked against the hub's hash before it is trusted.
    if have and file.sha256 and _sha256(partial) != file.sha256:
        partial.unlink()
        raise FtwizError(f"{file.name}: the resumed download does not match the hub's sha256 (the partial file "
                         "was from another version or damaged); it was deleted",
                         fix="run the pull again to download the file afresh")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)
    os.replace(partial, blob)
