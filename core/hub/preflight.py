"""Before a byte of weights moves: the files and their size, free disk where they land (and where the
later merge and GGUF files go), and whether the model fits this machine for training.

Only config.json and the safetensors index are fetched here (kilobytes): the GPU fit needs the config,
and the shard list comes from the index.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.export.kquant import needs_f16_intermediate
from ftwiz.core.hub.listing import INDEX, RepoListing, Selection, select_files
from ftwiz.core.hub.progress import human_size
from ftwiz.core.quant_types import estimated_bytes

LATER_QUANT = "Q4_K_M"  # the default export: its size is what "later" means in the disk check


@dataclass
class PullPlan:
    listing: RepoListing
    selection: Selection
    cache_dir: Path
    have_bytes: int              # of the selection: complete files in the cache plus kept partial downloads
    free_cache: int              # free bytes where the download lands
    later: dict[str, int]        # merge / F16 / Q4_K_M bytes the export will write under runs/
    free_runs: int
    same_disk: bool
    parameters: int | None = None
    fits: bool | None = None     # the planner's verdict for training on this machine
    fit_text: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def to_download(self) -> int:
        return max(self.selection.total_bytes - self.have_bytes, 0)

    def summary_lines(self) -> list[str]:
        """What the user reads before saying yes: sizes, disk, fit, licence."""
        listing = self.listing
        lines = [f"{listing.repo_id} at {listing.commit[:12]} ({listing.revision}) from {listing.endpoint}"]
        lines.append(f"licence: {listing.licence or 'not stated'}" + ("; gated (needs an accepted licence and a "
                                                                       "token)" if listing.gated else ""))
        lines.append(f"{len(self.selection.files)} files, {human_size(self.selection.total_bytes)}"
                     + (f" ({human_size(self.have_bytes)} already here, {human_size(self.to_download)} to download)"
                        if self.have_bytes else ""))
        later = sum(self.later.values())
        lines.append(f"disk: {human_size(self.free_cache)} free at {self.cache_dir}"
                     + (f"; merge + GGUF later need about {human_size(later)} under runs/"
                        f"{' on the same disk' if self.same_disk else f' ({human_size(self.free_runs)} free there)'}"
                        if later else ""))
        if self.fit_text:
            lines.append(f"this machine: {self.fit_text}")
        return lines + [f"warning: {w}" for w in self.warnings]


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _have(cache_dir: Path, listing: RepoListing, selection: Selection) -> int:
    from ftwiz.core.hub.download import partial_bytes, pointer_path

    done = sum(f.size or 0 for f in selection.files
               if pointer_path(cache_dir, listing.repo_id, listing.commit, f.name).exists())
    return done + partial_bytes(cache_dir, listing.repo_id, {f.sha256 for f in selection.files if f.sha256})


def make_plan(listing: RepoListing, *, cache_dir: Path, runs_dir: Path, hardware=None, vram_gb: float | None = None,
              fetch=None) -> PullPlan:
    """The pull plan; raises FtwizError when the download itself cannot fit on the disk.

    ``fetch(name) -> Path`` downloads one small file (config.json, the index) into the cache.
    """
    index = fetch(INDEX) if listing.get(INDEX) and fetch else None
    config = fetch("config.json") if listing.get("config.json") and fetch else None
    selection = select_files(listing, index)
    have = _have(cache_dir, listing, selection)
    cache_at, runs_at = _existing(cache_dir), _existing(runs_dir)
    free_cache, free_runs = shutil.disk_usage(cache_at).free, shutil.disk_usage(runs_at).free
    same_disk = cache_at.stat().st_dev == runs_at.stat().st_dev
    plan = PullPlan(listing, selection, cache_dir, have, free_cache, {}, free_runs, same_disk)
    if config is not None:
        _judge_fit(plan, config, hardware, vram_gb)
    if plan.to_download > free_cache:
        raise FtwizError(f"{listing.repo_id} needs {human_size(plan.to_download)} in the Hugging Face cache, "
                         f"only {human_size(free_cache)} is free at {cache_at}",
                         fix="free disk space, or point HF_HUB_CACHE (or HF_HOME) at a larger disk")
    later = sum(plan.later.values())
    room = free_cache - plan.to_download if same_disk else free_runs
    if later > room:
        plan.warnings.append(f"after the download, {human_size(room)} stays free where runs/ is, but merging "
                             f"and exporting to GGUF ({LATER_QUANT}) later need about {human_size(later)}")
    return plan


def _judge_fit(plan: PullPlan, config_path: Path, hardware, vram_gb: float | None) -> None:
    """The planner's verdict and the export sizes, from config.json (nothing raises: a pull still works)."""
    from ftwiz.core.model_config import read_config
    from ftwiz.core.planner.catalog import duration
    from ftwiz.core.planner.recommend import plan_recipe
    from ftwiz.core.planner.spec import spec_from_config
    from ftwiz.core.recipe import parse_recipe

    try:
        spec = spec_from_config(read_config(config_path), str(config_path))
        recipe = parse_recipe({"model_name_or_path": plan.listing.repo_id, "dataset": ["demo"], "cutoff_len": 1024})
        result = plan_recipe(recipe, hardware, vram_gb=vram_gb, spec=spec, seq_len=1024)
    except (FtwizError, ValueError, OSError) as exc:
        plan.warnings.append(f"could not judge the fit from config.json: {exc}")
        return
    n = spec.total_params
    plan.parameters = n
    plan.later = {"merge": 2 * n, LATER_QUANT: estimated_bytes(n, LATER_QUANT)}
    if needs_f16_intermediate([LATER_QUANT]):  # only where llama.cpp's quantizer makes it from an F16 GGUF
        plan.later["F16"] = 2 * n
    plan.fits = result.fits
    peak = f"{result.estimate.peak_bytes / 2**30:.1f} GiB"
    if result.fits:
        per_epoch = (f", {duration(result.est_seconds_per_epoch)} per epoch of 1,000 samples"
                     if result.est_seconds_per_epoch else "")
        plan.fit_text = f"fits for training with {result.method} on {result.device} (peak {peak} at 1024 tokens{per_epoch})"
    else:
        plan.fit_text = f"does NOT fit for training here (peak {peak} at 1024 tokens even with QLoRA)"
        plan.warnings.append("this model will not train on this machine; a smaller one or a bigger GPU is needed")
