"""``pull``: a base model's needed files into the Hugging Face cache, checked first, resumable, pinned.

    plan = prepare_pull("Qwen/Qwen2.5-1.5B-Instruct")    # listing, sizes, disk, GPU fit (no weights yet)
    result = run_pull(plan, on_progress=..., cancelled=...)
    result.commit                                        # the commit the files are from: what a run pins

Raises FtwizError (gated, missing, offline, disk) and PullCancelled (partial files kept for the next pull).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.hub.listing import RepoListing, fetch_listing, hub_endpoint
from ftwiz.core.hub.preflight import PullPlan, make_plan
from ftwiz.core.hub.progress import ProgressCallback, PullProgress, RateMeter


@dataclass(frozen=True)
class PullResult:
    repo_id: str
    commit: str
    path: Path               # the snapshot folder: what model_name_or_path resolves to
    downloaded_bytes: int    # received in this pull (0 when everything was cached)
    files: int


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except Exception as exc:  # HFValidationError: its message names the rule broken
        raise FtwizError(f"'{repo_id}' is not a hub id: {exc}", fix="use Org/Model, e.g. Qwen/Qwen2.5-1.5B-Instruct") \
            from None
    if repo_id.count("/") != 1:
        raise FtwizError(f"'{repo_id}' is not a hub id", fix="use Org/Model, e.g. Qwen/Qwen2.5-1.5B-Instruct")


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot ``revision`` resolves to without the network, or None."""
    from ftwiz.core.paths import hf_cache_dir
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True, cache_dir=hf_cache_dir()))
    except Exception:  # not cached (LocalEntryNotFoundError) or an unreadable entry: not usable offline
        return None


def prepare_pull(repo_id: str, revision: str | None = None, *, hardware=None, vram_gb: float | None = None,
                 token: str | None = None) -> PullPlan:
    """Everything the user should see before the weights download; see :class:`PullPlan`."""
    from ftwiz.core.hub.download import download_file
    from ftwiz.core.paths import hf_cache_dir, runs_dir
    from huggingface_hub import constants

    check_repo_id(repo_id)
    if constants.is_offline_mode():
        raise FtwizError(f"offline mode is on (HF_HUB_OFFLINE), so {repo_id} cannot be downloaded",
                         fix="unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download; "
                             "models already in the cache train offline")
    listing = fetch_listing(repo_id, revision, token)
    cache = hf_cache_dir()

    def fetch(name: str) -> Path:
        file = listing.get(name)
        assert file is not None
        return download_file(repo_id, file, listing.commit, cache_dir=cache, endpoint=listing.endpoint,
                             on_size=lambda _n: None, cancelled=lambda: False)

    return make_plan(listing, cache_dir=cache, runs_dir=runs_dir(), hardware=hardware, vram_gb=vram_gb, fetch=fetch)


def run_pull(plan: PullPlan, *, on_progress: ProgressCallback | None = None,
             cancelled: Callable[[], bool] = lambda: False) -> PullResult:
    """Download the plan's files (small ones first), then record the revision -> commit ref."""
    from ftwiz.core.hub.download import download_file, storage_folder

    listing = plan.listing
    files = sorted(plan.selection.files, key=lambda f: (f.size or 0, f.name))
    tally = _Tally(plan.selection.total_bytes, len(files), on_progress)
    path: Path | None = None
    for index, file in enumerate(files):
        tally.begin(file.name, file.size or 0, index)
        path = download_file(listing.repo_id, file, listing.commit, cache_dir=plan.cache_dir,
                             endpoint=listing.endpoint, on_size=tally.on_size, cancelled=cancelled)
        tally.end(path.stat().st_size)
    _write_ref(storage_folder(plan.cache_dir, listing.repo_id), listing)
    snapshot = path.parent if path is not None else plan.cache_dir
    return PullResult(listing.repo_id, listing.commit, snapshot, tally.received, len(files))


class _Tally:
    """Byte counts across files: what is present (for the bar) and what arrived now (for the speed)."""

    def __init__(self, total: int, files: int, on_progress: ProgressCallback | None) -> None:
        self.total, self.files, self.on_progress = total, files, on_progress
        self.finished = 0        # bytes of files complete
        self.received = 0        # bytes that arrived in this pull
        self.meter = RateMeter()
        self.name, self.size, self.index, self.start = "", 0, 0, None

    def begin(self, name: str, size: int, index: int) -> None:
        self.name, self.size, self.index, self.start = name, size, index, None

    def on_size(self, n: int) -> None:
        if self.start is None:
            self.start = n  # a resumed partial file: its bytes were not received now
        speed = self.meter.add(self.received + max(n - self.start, 0))
        if self.on_progress:
            self.on_progress(PullProgress(self.name, n, self.size, self.finished + min(n, self.size), self.total,
                                          self.index, self.files, speed))

    def end(self, size: int) -> None:
        if self.start is not None:
            self.received += max(size - self.start, 0)
        self.finished += self.size


def _write_ref(storage: Path, listing: RepoListing) -> None:
    """refs/<revision> -> commit, as huggingface-hub records it, so an offline lookup of the branch finds it."""
    if listing.revision == listing.commit:
        return
    ref = storage / "refs" / listing.revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(listing.commit)


def pull(repo_id: str, revision: str | None = None, **kwargs) -> PullResult:
    """prepare_pull + run_pull without asking (the CLI's ``--yes``; tests)."""
    progress = kwargs.pop("on_progress", None)
    cancelled = kwargs.pop("cancelled", lambda: False)
    return run_pull(prepare_pull(repo_id, revision, **kwargs), on_progress=progress, cancelled=cancelled)


__all__ = ["PullResult", "cached_snapshot", "check_repo_id", "hub_endpoint", "prepare_pull", "pull", "run_pull"]
