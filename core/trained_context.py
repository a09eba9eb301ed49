"""What a fine-tune was trained with that whoever runs it must repeat, carried inside its GGUF.

A run's recipe puts its ``system:`` prompt in front of every record that has none, and picks thinking on or
off for hybrid-thinking templates (Qwen3). ``ftwiz chat``, ``serve``, ``register`` and ``eval`` repeat both, or
the model is asked questions outside the distribution it was trained on (an identity fine-tune forgets its
name). The run folder records them, but a GGUF gets renamed, moved to a models folder, copied to another
machine, or outlives its run folder, and until now it then lost them without a word.

So ``ftwiz export`` of a run writes them into the GGUF, in keys of its own namespace (llama.cpp and Ollama
ignore keys they do not know; the tensors and every standard key stay as llama.cpp's converter writes them):

- ``ftwiz.source_run`` (string): the run's name. Its presence says the file carries its run's context.
- ``ftwiz.system_prompt`` (string): the recipe's system prompt with its ``{{placeholders}}`` filled, as
  training used it; absent when the recipe has none.
- ``ftwiz.enable_thinking`` (bool): the recipe's choice for thinking templates; absent when it made none.
- ``ftwiz.cutoff_len`` (uint32): the longest sequence training saw, in tokens (``register`` gives Ollama that
  context, ``num_ctx``, as it does for the run itself).

The one reader of these facts for a GGUF is :func:`trained_context`: the file's own keys first (they describe
exactly this file), else the run it still sits in or the models registry links it to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_RUN = "ftwiz.source_run"
SYSTEM_PROMPT = "ftwiz.system_prompt"
ENABLE_THINKING = "ftwiz.enable_thinking"
CUTOFF_LEN = "ftwiz.cutoff_len"


@dataclass(frozen=True)
class TrainedContext:
    """The run a fine-tune came from and how it was trained to be prompted."""

    source_run: str
    system: str | None  # sent first (or folded into the first user turn) when the user gives none
    enable_thinking: bool | None  # None: the template's own default
    cutoff_len: int | None = None  # tokens; None when not recorded

    def gguf_keys(self) -> dict[str, str | bool | int]:
        """The GGUF keys recording this context (see the module docstring)."""
        keys: dict[str, str | bool | int] = {SOURCE_RUN: self.source_run}
        if self.system:
            keys[SYSTEM_PROMPT] = self.system
        if self.enable_thinking is not None:
            keys[ENABLE_THINKING] = bool(self.enable_thinking)
        if self.cutoff_len:
            keys[CUTOFF_LEN] = int(self.cutoff_len)
        return keys


def add_keys(writer, keys: dict[str, str | bool | int]) -> None:
    """Write :meth:`TrainedContext.gguf_keys` with gguf-py's ``writer`` (string, bool or uint32 values)."""
    for key, value in keys.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_string(key, value)


def context_of_run(run_root: str | Path) -> TrainedContext:
    """The context recorded by a run folder's recipe.yaml (the run stores its system prompt filled)."""
    from ftwiz.core.recipe import load_recipe

    root = Path(run_root)
    recipe = load_recipe(root / "recipe.yaml")
    return TrainedContext(root.name, recipe.system or None, getattr(recipe, "enable_thinking", None),
                          recipe.cutoff_len)


def run_of_model_folder(model_dir: str | Path) -> Path | None:
    """The run whose fine-tune ``model_dir`` is (its ``merged/``, a full fine-tune's ``model/``, its ``adapter/``
    or a ``checkpoints/checkpoint-N/``), or None: ``ftwiz export runs/RUN/merged`` exports the run's model as a
    plain folder, ``export --adapter-only`` its adapter, and the GGUF must still carry how the run was trained to
    be prompted."""
    folder = Path(model_dir).expanduser().resolve()
    if folder.parent.name == "checkpoints" and folder.name.startswith("checkpoint-"):
        folder = folder.parent.parent / "adapter"
    run = folder.parent  # a run folder, not a user's project holding a recipe.yaml beside a model/ it downloaded
    if folder.name in ("merged", "model", "adapter") and (run / "recipe.yaml").is_file() and (
            (run / "run_card.json").is_file() or (run / "status.json").is_file()):
        return run
    return None


def run_context_keys(run_root: str | Path) -> dict[str, str | bool | int]:
    """The run's trained context as GGUF keys; none (with a warning) when its recipe.yaml cannot be read: an
    export does not depend on it, chat and serve then fall back to the run folder."""
    import logging

    from ftwiz.core.errors import FtwizError

    try:
        return context_of_run(run_root).gguf_keys()
    except (FtwizError, OSError) as exc:
        logging.getLogger(__name__).warning("the GGUF will not carry the run's system prompt: %s",
                                            getattr(exc, "what", exc))
        return {}


def context_from_metadata(meta: dict[str, Any]) -> TrainedContext | None:
    """The context a GGUF's metadata carries, or None when ftwiz did not write one into it."""
    run = meta.get(SOURCE_RUN)
    if not isinstance(run, str):
        return None
    system = meta.get(SYSTEM_PROMPT)
    thinking = meta.get(ENABLE_THINKING)
    cutoff = meta.get(CUTOFF_LEN)
    return TrainedContext(run, system if isinstance(system, str) and system else None,
                          bool(thinking) if thinking is not None else None,
                          int(cutoff) if isinstance(cutoff, int) and not isinstance(cutoff, bool) and cutoff > 0
                          else None)


def read_gguf_context(gguf_path: str | Path) -> TrainedContext | None:
    """The context written into the GGUF at ``gguf_path``, or None (none written, or not a readable GGUF).
    Reads only ftwiz's keys: the vocabulary is stepped over (~0.1 s for 151k tokens)."""
    import struct

    from ftwiz.core.gguf_info import read_metadata

    try:
        meta = read_metadata(Path(gguf_path), wanted=lambda key: key.startswith("ftwiz."))
    except (OSError, ValueError, struct.error, IndexError):
        return None
    return context_from_metadata(meta)


def trained_context(gguf_path: str | Path, run_root: str | Path | None) -> TrainedContext | None:
    """How the fine-tune in ``gguf_path`` was trained to be prompted: the file's own keys, else the recipe of
    ``run_root`` (the run it sits in or the registry links it to; None when there is none), else None."""
    found = read_gguf_context(gguf_path)
    if found is not None:
        return found
    return context_of_run(run_root) if run_root is not None else None
