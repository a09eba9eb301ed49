"""The run directory: everything later stages need, found from ``runs/<name>/`` alone.

Layout (a contract between train, merge, export, eval, chat and the wizard)::

    runs/<name>/
      recipe.yaml          the resolved recipe (every field filled)
      plan.json            the planner's output that training consumed
      run_card.json        versions, dataset hash, template hash, base model path and revision
      events.jsonl         the event stream (see ftwiz.core.events)
      status.json          {"state": "running|completed|cancelled|failed", ...} for resume and the wizard
      data/                train.jsonl, validation.jsonl, test.jsonl (normalised {"messages": [...]})
      checkpoints/         checkpoint-<step>/ (the last N kept)
      adapter/             final LoRA adapter (safetensors + adapter_config.json + tokenizer)
      model/               final full fine-tuned model (full method only)
      merged/              16-bit merged model (ftwiz merge)
      export/              GGUF files (ftwiz export) and their reports
      eval/                evaluation reports (ftwiz eval)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError
from ftwiz.core.paths import runs_dir


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def named(cls, name: str) -> RunDir:
        return cls(runs_dir() / name)

    @classmethod
    def resolve(cls, name_or_path: str | Path) -> RunDir:
        """A run given by path or by name under runs/; error if it is not a run directory."""
        candidate = Path(name_or_path)
        for path in (candidate, runs_dir() / str(name_or_path)):
            if (path / "recipe.yaml").is_file():
                return cls(path.resolve())
        raise FtwizError(
            f"no ftwiz run found at '{name_or_path}'",
            fix=f"give a run directory (containing recipe.yaml) or a run name under {runs_dir()}",
        )

    @property
    def name(self) -> str:
        return self.root.name

    recipe = property(lambda self: self.root / "recipe.yaml")
    plan = property(lambda self: self.root / "plan.json")
    run_card = property(lambda self: self.root / "run_card.json")
    events = property(lambda self: self.root / "events.jsonl")
    status = property(lambda self: self.root / "status.json")
    data = property(lambda self: self.root / "data")
    checkpoints = property(lambda self: self.root / "checkpoints")
    adapter = property(lambda self: self.root / "adapter")
    model = property(lambda self: self.root / "model")
    merged = property(lambda self: self.root / "merged")
    export = property(lambda self: self.root / "export")
    eval = property(lambda self: self.root / "eval")

    def read_json(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FtwizError(f"{path} is missing from run '{self.name}'",
                             fix="the run may not have finished; see its events.jsonl") from None

    def state(self) -> str:
        """running / completed / cancelled / failed, or 'unknown' for a run that never wrote a status."""
        if not self.status.exists():
            return "unknown"
        return str(self.read_json(self.status).get("state", "unknown"))

    def checkpoint_steps(self) -> list[int]:
        if not self.checkpoints.is_dir():
            return []
        steps = []
        for child in self.checkpoints.iterdir():
            if child.is_dir() and child.name.startswith("checkpoint-") and child.name[11:].isdigit():
                steps.append(int(child.name[11:]))
        return sorted(steps)


def list_runs() -> list[RunDir]:
    root = runs_dir()
    if not root.is_dir():
        return []
    return sorted((RunDir(p) for p in root.iterdir() if (p / "recipe.yaml").is_file()), key=lambda r: r.name)
