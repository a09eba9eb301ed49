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
      export/              GGUF files (ftwiz export) and their reports: <run>-<QUANT>.gguf
      base/                copies of the base model as GGUF (for base-vs-fine-tuned comparisons), kept apart
                           from export/ so that a run never resolves to its base model
      eval/                evaluation reports (ftwiz eval)

The run card is typed (:class:`RunCard`); what is on disk is read through :class:`RunDir`'s questions
(``card()``, ``exports()``, ``latest_gguf()``, ``base_gguf_path()``, ``stage()``, ``status_info()``) so that
the CLI, the wizard, deploy and the registry answer them the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.paths import runs_dir

if TYPE_CHECKING:
    from ftwiz.core.run_card import RunCard

ExportRole = Literal["fine-tuned", "base", "adapter"]
# <stem>-<QUANT>.gguf as export writes them; the quantization names llama.cpp users know.
_QUANT_SUFFIX = re.compile(r"-(F32|F16|BF16|Q[2-8]_[0-9A-Z_]+|IQ[1-4]_[A-Z_0-9]+)\.gguf$", re.IGNORECASE)


def __getattr__(name: str) -> Any:
    """``from ftwiz.core.rundir import RunCard`` keeps working; pydantic loads only when it is asked for."""
    if name == "RunCard":
        from ftwiz.core.run_card import RunCard

        return RunCard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class GGUFExport:
    """One GGUF file of a run: its own fine-tuned export, a base-model copy, or a LoRA adapter GGUF."""

    path: Path
    role: ExportRole
    quant: str | None
    mtime: float

    @property
    def label(self) -> str:
        """How lists name it: the base copy says so, so nobody mistakes it for the fine-tune."""
        return {"fine-tuned": "fine-tuned", "base": "base model (for comparison)", "adapter": "LoRA adapter"}[self.role]


def gguf_quant(path: Path) -> str | None:
    """The quantization of a GGUF: from the ``-<QUANT>.gguf`` name export writes, else its header."""
    match = _QUANT_SUFFIX.search(path.name)
    if match:
        return match.group(1).upper()
    try:
        from ftwiz.core.gguf_info import read_gguf_info

        return read_gguf_info(path).file_type
    except (FtwizError, ValueError, OSError):
        return None


def export_role(path: Path) -> ExportRole:
    """Base copies are in base/ (or, from older versions, named base-<QUANT>.gguf in export/); LoRA adapter
    GGUFs are <run>-lora-<TYPE>.gguf (``export --adapter-only``); everything else is the fine-tune."""
    if path.parent.name == "base" or re.fullmatch(r"base-[A-Z0-9_]+\.gguf", path.name, re.IGNORECASE):
        return "base"
    match = _QUANT_SUFFIX.search(path.name)
    if match and path.parent.name == "export" and path.name[:match.start()] == path.parent.parent.name:
        return "fine-tuned"  # <run>-<QUANT>.gguf is the run's own model, even for a run named 'my-lora'
    if re.search(r"-lora-[A-Z0-9_]+\.gguf$", path.name, re.IGNORECASE):
        return "adapter"
    return "fine-tuned"


class RunFolderIncomplete(FtwizError):
    """A folder that was a run (it has a run card or events) but lost its recipe.yaml: not a model name either."""


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
        for path in (candidate, runs_dir() / str(name_or_path)):
            if (path / "run_card.json").is_file():  # a run that lost its recipe.yaml
                raise RunFolderIncomplete(f"run folder '{path.name}' has no recipe.yaml, so ftwiz cannot tell how it "
                                          "was trained", where=Location(file=path / "recipe.yaml"),
                                          fix="put the run's recipe back as recipe.yaml (a copy of the recipe it was "
                                              "trained with), or train it again")
            if (path / "status.json").is_file():  # a run that failed before training started (a bad model or data)
                info = cls(path).status_info()
                reason = (info.get("message") if isinstance(info, dict) else None) or "see its events.jsonl"
                raise RunFolderIncomplete(f"run '{path.name}' failed before training started: {reason}",
                                          where=Location(file=path), fix=f"fix that, then train again: `ftwiz train "
                                          f"RECIPE --run-name {path.name}`")
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
        """One of the run's JSON files; FtwizError when it is missing or damaged (cut off, edited by hand)."""
        what, line = "not a JSON object", None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FtwizError(f"{path} is missing from run '{self.name}'",
                             fix="the run may not have finished; see its events.jsonl") from None
        except json.JSONDecodeError as exc:
            data, what, line = None, f"not valid JSON ({exc.msg})", exc.lineno
        except (ValueError, OSError) as exc:  # not UTF-8, a folder in its place, no permission
            data, what = None, f"unreadable ({exc})"
        if isinstance(data, dict):
            return data
        raise FtwizError(f"{path.name} of run '{self.name}' is damaged: {what}", where=Location(file=path, line=line),
                         fix=f"restore {path.name} from a backup or a copy of the run, or train the run again")

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

    # --- the questions later stages ask about a run -------------------------------------------------

    base_copies = property(lambda self: self.root / "base")

    @classmethod
    def of_file(cls, path: str | Path) -> RunDir | None:
        """The run a file belongs to (a GGUF in ``<run>/export/`` or ``<run>/base/``), or None."""
        parent = Path(path).expanduser().resolve().parent
        if parent.name in ("export", "base") and (parent.parent / "recipe.yaml").is_file():
            return cls(parent.parent)
        return None

    def card(self) -> RunCard:
        """The typed run card; an empty card for a run that has not written one yet (training not started)."""
        from ftwiz.core.run_card import RunCard
        from pydantic import ValidationError

        if not self.run_card.is_file():
            return RunCard(run_name=self.name)
        raw = self.read_json(self.run_card)
        try:
            return RunCard.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise FtwizError(f"the run card of '{self.name}' is damaged: {first['msg']}",
                             where=Location(file=self.run_card, field=".".join(map(str, first["loc"]))),
                             fix="restore run_card.json from a backup, or train the run again") from None

    def base_model_dir(self) -> Path | None:
        """The base model folder: the card's path when it exists here, else the recipe's model resolved
        on this machine (a run copied from elsewhere), else None."""
        card = self.card()
        if card.base_model and Path(card.base_model).is_dir():
            return Path(card.base_model)
        try:
            from ftwiz.core.models import resolve_model
            from ftwiz.core.recipe import load_recipe

            return resolve_model(card.base_model_name or load_recipe(self.recipe).model_name_or_path)
        except FtwizError:
            return None

    def method(self) -> str | None:
        """lora / qlora / full: the card's record, else the recipe's request."""
        if self.card().method:
            return self.card().method
        try:
            from ftwiz.core.recipe import load_recipe

            return str(load_recipe(self.recipe).finetuning_type)
        except FtwizError:
            return None

    def status_info(self) -> dict[str, Any]:
        """status.json as written (state; ``message`` is a failed run's reason); {} when there is none."""
        if not self.status.is_file():
            return {}
        try:
            return json.loads(self.status.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def exports(self) -> list[GGUFExport]:
        """Every GGUF of the run, oldest first: export/ (fine-tuned, adapters, old base-*.gguf) and base/."""
        found = []
        for folder in (self.export, self.base_copies):
            if not folder.is_dir():
                continue
            for path in folder.glob("*.gguf"):
                if path.name.startswith(".") or not path.is_file():  # .intermediate files of a running export
                    continue
                found.append(GGUFExport(path.resolve(), export_role(path), gguf_quant(path), path.stat().st_mtime))
        return sorted(found, key=lambda e: (e.mtime, e.path.name))

    def exports_by_quant(self) -> dict[str, Path]:
        """The newest fine-tuned GGUF per quantization ('?' when it cannot be told)."""
        return {(e.quant or "?"): e.path for e in self.exports() if e.role == "fine-tuned"}

    def latest_gguf(self, quant: str | None = None) -> Path | None:
        """The run's own newest fine-tuned GGUF (of ``quant`` when given); never a base copy or adapter."""
        tuned = [e for e in self.exports() if e.role == "fine-tuned"
                 and (quant is None or (e.quant or "").upper() == quant.upper())]
        return tuned[-1].path if tuned else None

    def require_gguf(self, quant: str | None = None) -> Path:
        """:meth:`latest_gguf`, or an FtwizError saying how to make one (and why there is none)."""
        path = self.latest_gguf(quant)
        if path is not None:
            return path
        self.require_trained("export")
        what = f"no {quant} GGUF" if quant else "no exported GGUF"
        others = ", ".join(sorted(self.exports_by_quant()))
        raise FtwizError(f"run '{self.name}' has {what} yet" + (f" (it has: {others})" if others else ""),
                         where=Location(file=self.export),
                         fix=f"run `ftwiz export {self.name}" + (f" --quant {quant}`" if quant else "`") + " first")

    def base_gguf_path(self, quant: str = "Q8_0") -> Path:
        """Where the base model's GGUF copy for comparisons goes: ``base/base-<QUANT>.gguf``, not export/."""
        return self.base_copies / f"base-{quant.upper()}.gguf"

    def existing_base_gguf(self, quant: str = "Q8_0") -> Path | None:
        """A base copy already made (base/, or export/base-*.gguf from older versions), or None."""
        for path in (self.base_gguf_path(quant), self.export / f"base-{quant.upper()}.gguf"):
            if path.is_file():
                return path
        return None

    def stage(self) -> str:
        """The furthest stage reached: new, training, cancelled, failed, trained, merged or exported."""
        if self.latest_gguf() is not None:
            return "exported"
        if (self.merged / "config.json").is_file():
            return "merged"
        state = self.state()
        if state == "completed" or (state == "unknown" and (self.adapter.is_dir() or self.model.is_dir())):
            return "trained"
        return {"running": "training", "cancelled": "cancelled", "failed": "failed"}.get(state, "new")

    def has_trained_model(self) -> bool:
        return ((self.adapter / "adapter_config.json").is_file() or (self.model / "config.json").is_file()
                or (self.merged / "config.json").is_file())

    def require_trained(self, verb: str) -> None:
        """Raise :meth:`not_finished_error` unless training left a model (adapter/, model/ or merged/)."""
        if not self.has_trained_model():
            raise self.not_finished_error(verb)

    def not_finished_error(self, verb: str) -> FtwizError:
        """What to tell a user who asks ``verb`` (export, eval, merge...) of a run that has no trained model."""
        state = self.state()
        if state == "cancelled":
            return FtwizError(f"run '{self.name}' was cancelled before it finished, so there is nothing to {verb}",
                              where=Location(file=self.root), fix=f"resume it with `ftwiz train --resume {self.name}`")
        if state == "failed":
            reason = self.status_info().get("message") or "see its events.jsonl"
            return FtwizError(f"the run failed: {reason}", where=Location(file=self.root),
                              fix=f"fix the cause, then `ftwiz train --resume {self.name}` or start a new run")
        if state == "running":
            return FtwizError(f"run '{self.name}' is still training", where=Location(file=self.root),
                              fix=f"wait for it to finish, then {verb} it")
        return FtwizError(f"run '{self.name}' has no trained model yet (no adapter/ or model/)",
                          where=Location(file=self.root), fix=f"train it first: `ftwiz train {self.recipe}`")


def list_runs() -> list[RunDir]:
    root = runs_dir()
    if not root.is_dir():
        return []
    return sorted((RunDir(p) for p in root.iterdir() if (p / "recipe.yaml").is_file()), key=lambda r: r.name)


def next_free_run_name(base: str) -> str:
    """``base``, or ``base-2``, ``base-3``... : a name no run under runs/ uses yet."""
    name, number = base, 1
    while (runs_dir() / name).exists():
        number += 1
        name = f"{base}-{number}"
    return name
