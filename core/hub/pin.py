"""Which weights a run trained on, and the check that a resume uses the same ones.

Training records the snapshot's commit in the run card (``base_model_revision``). A later
``ftwiz pull`` may move the cache's ``main`` to a newer commit; resuming on it would train a mix of two
models, so a resume uses the pinned commit, and refuses when that snapshot is no longer in the cache.
"""

from __future__ import annotations

import re

from ftwiz.core.errors import FtwizError

COMMIT = re.compile(r"^[0-9a-f]{40}$")


def snapshot_commit(model_dir) -> str | None:
    """The commit of a folder inside the Hugging Face cache (``.../snapshots/<commit>``), else None."""
    from pathlib import Path

    path = Path(model_dir)
    return path.name if path.parent.name == "snapshots" and COMMIT.match(path.name) else None


def pinned_commit(run) -> str | None:
    """The commit recorded in ``run``'s card, when it trained on a hub snapshot."""
    try:
        card = run.read_json(run.run_card) if run.run_card.exists() else {}
    except (OSError, ValueError):
        return None
    revision = card.get("base_model_revision")
    return revision if isinstance(revision, str) and COMMIT.match(revision) else None


def check_resume_pin(run, recipe) -> str | None:
    """The commit a resume of ``run`` must train on (None when the base is not a hub snapshot).

    Raises FtwizError when that snapshot is gone from the cache and the cache now holds another one.
    """
    from ftwiz.core.hub.pull import cached_snapshot

    pinned = pinned_commit(run)
    name = recipe.model_name_or_path
    if pinned is None or name.count("/") != 1:
        return None
    if cached_snapshot(name, pinned) is not None:
        return pinned
    current = cached_snapshot(name, recipe.revision)
    now = snapshot_commit(current) if current else None
    where = f"the cache now holds {now[:12]} instead" if now else "that snapshot is no longer in the cache"
    raise FtwizError(f"cannot resume run '{run.name}': it trained on {name} at commit {pinned[:12]}, and {where}; "
                     "continuing on other weights would train a mix of two models",
                     fix=f"fetch the exact weights back with `ftwiz pull {name} --revision {pinned}`, then resume")
