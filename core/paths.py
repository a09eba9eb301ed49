"""Where ftwiz keeps things, in one place so the CLI, the wizard and the README agree.

- runs:   ``$FTWIZ_RUNS_DIR`` or ``./runs``  (one directory per training run, next to the user's work)
- cache:  ``$FTWIZ_CACHE_DIR`` or ``$XDG_CACHE_HOME/ftwiz`` (~/.cache/ftwiz): the built demo model,
          tokenized-data caches, GGUF vocabulary arrays (``gguf-vocab/``, the 8 latest tokenizers).
          Safe to delete.
- data:   ``$FTWIZ_DATA_DIR`` or ``$XDG_DATA_HOME/ftwiz`` (~/.local/share/ftwiz): the registry of
          exported models.
Hugging Face's own cache stays where huggingface-hub puts it (``$HF_HOME``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def _folder(path: Path, var: str, holds: str) -> Path:
    """``path``, or FtwizError when a file stands where the folder goes (a mistyped ``var``): every later mkdir
    under it would fail with NotADirectoryError."""
    if path.exists() and not path.is_dir():
        from ftwiz.core.errors import FtwizError

        raise FtwizError(f"{path} is a file, but ftwiz keeps {holds} in a folder there", where=var,
                         fix=f"point {var} at a folder (it is created if missing), or move that file away")
    return path


def runs_dir() -> Path:
    return _folder(Path(os.environ.get("FTWIZ_RUNS_DIR") or "runs").resolve(), "FTWIZ_RUNS_DIR", "its runs")


def cache_dir() -> Path:
    value = os.environ.get("FTWIZ_CACHE_DIR")
    return _folder(Path(value) if value else _xdg("XDG_CACHE_HOME", ".cache") / "ftwiz", "FTWIZ_CACHE_DIR",
                   "its cache")


def data_dir() -> Path:
    value = os.environ.get("FTWIZ_DATA_DIR")
    return _folder(Path(value) if value else _xdg("XDG_DATA_HOME", ".local/share") / "ftwiz", "FTWIZ_DATA_DIR",
                   "its models registry")


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved the way huggingface-hub resolves it, without importing it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    hf_home = os.environ.get("HF_HOME")
    base = Path(hf_home) if hf_home else _xdg("XDG_CACHE_HOME", ".cache") / "huggingface"
    return base / "hub"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-system-safe name for a run or model ("Qwen/Qwen3-0.6B" -> "Qwen-Qwen3-0.6B")."""
    name = _UNSAFE.sub("-", text).strip("-.")
    return name or "run"


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run folder directly under runs/, or None when it can.

    A name with a path separator or a bare ``..`` would put the run (and every later export, merge and
    eval output) in a nested folder or outside runs/ altogether, where ``ftwiz models``/``clean`` never look.
    """
    if "/" in name or "\\" in name:
        return "holds a path separator, so the run would not be a folder directly under runs/"
    if name.strip() in (".", ".."):
        return "is '.' or '..', which is a folder that already exists, not a new run"
    if name != name.strip():
        return "starts or ends with a space"
    return None


def check_run_name(name: str, *, flag: bool = True) -> str:
    """``name`` when it can be a run folder directly under runs/, else FtwizError naming ``--run-name``
    (``flag``) or the recipe's ``run_name`` (see :func:`run_name_problem`)."""
    from ftwiz.core.errors import FtwizError, Location

    problem = run_name_problem(name)
    if problem:
        raise FtwizError(f"the run name '{name}' {problem}", where=Location(field="--run-name" if flag else "run_name"),
                         fix=f"use a plain folder name, e.g. --run-name {safe_name(name)}")
    return name
