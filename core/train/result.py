"""What a training run produced, and the result of a run given to --resume that already completed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.events import EventBus, Finished
from ftwiz.core.rundir import RunDir


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # completed | cancelled
    output_path: Path | None
    summary: dict[str, Any] = field(default_factory=dict)


def already_completed(resume: str) -> TrainResult | None:
    """The result of run ``resume`` (a name or path) when it already completed, else None.

    Only status.json is read; summary carries ``already_complete: True``, the step count and a message.
    Raises FtwizError (from RunDir.resolve) when no such run exists.
    """
    run = RunDir.resolve(resume)
    if run.state() != "completed":
        return None
    status = run.read_json(run.status)
    # the adapter/ or model/ inside the run where it is now: a run folder renamed or moved keeps its old path there
    output = run.root / Path(status["output"]).name if status.get("output") else run.adapter
    if not output.exists():  # deleted by hand: "already complete, its adapter: PATH" named a folder not there
        raise FtwizError(f"run '{run.root.name}' completed, but its {output.name}/ folder is gone, so there is "
                         "nothing to resume or show", where=Location(file=output),
                         fix=f"restore {output.name}/ from a backup, or train again under a new name (ftwiz train "
                             f"{run.recipe} --run-name {run.root.name}-2)")
    return TrainResult(run.root, "completed", output,
                       {"already_complete": True, "steps": status.get("step"),
                        "message": f"run '{run.root.name}' already completed: nothing to resume"})


def finish_if_completed(resume: str, bus: EventBus) -> TrainResult | None:
    """A completed run is never trained over: its 'finished' event on ``bus`` (not in its events.jsonl,
    which stays as it is) and its result; None when ``resume`` has training left to do."""
    done = already_completed(resume)
    if done is not None:
        bus.emit(Finished(status="completed", output_path=str(done.output_path), summary=done.summary))
    return done
