"""``ftwiz models rm``: forget a model, and optionally delete its GGUF and unregister it from Ollama.

The registry itself (:mod:`ftwiz.core.registry`) sits below every stage; removing a model from Ollama is
deploy's job, so this one function lives here.
"""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.registry import ModelEntry, forget
from ftwiz.core.rundir import RunDir


def remove_model(entry: ModelEntry, *, delete_file: bool = False, ollama: bool = False) -> list[str]:
    """Forget a model; optionally delete the GGUF and unregister it from Ollama. Returns what was done."""
    done: list[str] = []
    if ollama:
        from ftwiz.core.deploy.ollama_register import unregister

        for reg in entry.ollama:
            unregister(reg.name, host=reg.host)
            done.append(f"removed Ollama model {reg.name} ({reg.host})")
    if delete_file and entry.exists:
        Path(entry.path).unlink()
        done.append(f"deleted {entry.path}")
    if entry.in_registry:
        forget(entry)
        done.append("removed from the registry")
        path = Path(entry.path)
        if path.is_file() and RunDir.of_file(path) is not None:  # `models list` lists every run's GGUFs
            done.append(f"still listed: it lies in run '{RunDir.of_file(path).name}' ({path}); "
                        "add --delete-file to delete it")
    return done
