"""What ftwiz exported and where it is registered: ``ftwiz models list|show|rm``.

The data only: what is recorded and found; ``ftwiz models rm``'s Ollama side is
:mod:`ftwiz.core.deploy.models_rm`. It sits below every stage (it reads run folders and a JSON file), so
the export and the register step record into it without importing deploy.

Two sources, merged: the GGUFs found under ``runs/*/export/`` and ``runs/*/base/`` (so a run copied from
another machine shows up with no bookkeeping; base-model copies made for comparisons are labelled
``base``) and a small JSON registry in the data dir (``models.json``) that
``ftwiz export`` and ``ftwiz register`` append to, which also remembers files exported elsewhere and the
Ollama names they were registered under.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.errors import FtwizError
from ftwiz.core.paths import data_dir
from ftwiz.core.rundir import RunDir, export_role, gguf_quant, list_runs

REGISTRY_VERSION = 1


def registry_path() -> Path:
    return data_dir() / "models.json"


@dataclass
class OllamaRegistration:
    name: str
    host: str
    registered_at: str


@dataclass
class ModelEntry:
    path: str
    size: int | None = None
    quant: str | None = None
    source_run: str | None = None
    added_at: str | None = None
    ollama: list[OllamaRegistration] = field(default_factory=list)
    exists: bool = True
    in_registry: bool = False
    role: str = "fine-tuned"  # fine-tuned | base (a copy of the run's base model) | adapter (LoRA GGUF)

    @property
    def run_label(self) -> str:
        """The run column: the run's name, marked when the file is its base model and not its fine-tune."""
        if not self.source_run:
            return "-"
        return self.source_run if self.role == "fine-tuned" else f"{self.source_run} ({self.role})"

    @property
    def name(self) -> str:
        return Path(self.path).name

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _load() -> list[dict[str, Any]]:
    path = registry_path()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FtwizError(f"the model registry is not valid JSON ({exc.msg} at line {exc.lineno})", where=str(path),
                         fix="fix or delete the file; `ftwiz models list` still finds GGUFs under runs/") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise FtwizError("the model registry has no 'models' list", where=str(path),
                         fix="delete the file; exported GGUFs under runs/ are found again automatically")
    return [m for m in models if isinstance(m, dict) and m.get("path")]


def _save(models: list[dict[str, Any]]) -> None:
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"version": REGISTRY_VERSION, "models": models}, indent=2) + "\n")


def _entry(raw: dict[str, Any]) -> ModelEntry:
    regs = [OllamaRegistration(**{k: r.get(k, "") for k in ("name", "host", "registered_at")})
            for r in raw.get("ollama", []) if isinstance(r, dict)]
    path = Path(raw["path"])
    return ModelEntry(path=str(path), size=raw.get("size"), quant=raw.get("quant"), source_run=raw.get("source_run"),
                      added_at=raw.get("added_at"), ollama=regs, exists=path.is_file(), in_registry=True,
                      role=_role(path))


def _upsert(path: Path, clear: list[str] | None = None, **updates: Any) -> dict[str, Any]:
    """The entry of ``path`` with ``updates`` set (None values left as they are) and ``clear`` keys removed."""
    models = _load()
    key = str(path.resolve())
    for raw in models:
        if str(Path(raw["path"]).resolve()) == key:
            break
    else:
        raw = {"path": key, "added_at": _now(), "ollama": []}
        models.append(raw)
    for name, value in updates.items():
        if value is not None:
            raw[name] = value
    for name in clear or ():
        raw.pop(name, None)
    _save(models)
    return raw


def _source_run(path: Path) -> str | None:
    """The run a GGUF belongs to, when it sits in ``<run>/export/`` or ``<run>/base/`` next to a recipe.yaml."""
    run = RunDir.of_file(path)
    return run.name if run is not None else None


def _role(path: Path) -> str:
    """fine-tuned, or base / adapter for the run's other GGUFs (see RunDir.exports)."""
    return export_role(path) if RunDir.of_file(path) is not None else "fine-tuned"


def _quant(path: Path) -> str | None:
    return gguf_quant(path)


def record_export(gguf_path: str | Path, *, quant: str | None = None, source_run: str | None = None,
                  source_run_dir: str | Path | None = None) -> ModelEntry:
    """Remember an exported GGUF (called by ``ftwiz export``); ``source_run_dir``: the run's folder, which chat
    and serve read the run's system prompt from (:func:`run_of_export`) wherever the GGUF was written."""
    path = Path(gguf_path).expanduser().resolve()
    if not path.is_file():
        raise FtwizError(f"cannot record a missing file: {path}", where=str(path))
    run_dir = Path(source_run_dir).expanduser().resolve() if source_run_dir is not None else None
    source = {"source_run": source_run or (run_dir.name if run_dir else None) or _source_run(path),
              "source_run_dir": str(run_dir) if run_dir else None}
    # a new export replaces the file: an earlier record's run (a model exported over a run's GGUF) is dropped
    raw = _upsert(path, clear=[k for k, v in source.items() if v is None], size=path.stat().st_size,
                  quant=quant or _quant(path), **source)
    return _entry(raw)


def run_of_export(gguf_path: str | Path) -> RunDir | None:
    """The run an ftwiz-exported GGUF outside the run's folder came from (``ftwiz export RUN --out FILE``), by
    its registry record: the recorded run folder, else the recorded run's name under runs/.

    None for a file ftwiz did not export or exported from a model (no source run), one whose size changed since
    (replaced by another tool), a run that is gone, or a damaged registry (chat and serve work without it).
    """
    path = Path(gguf_path).expanduser().resolve()
    try:
        raw = next((m for m in _load() if str(Path(m["path"]).resolve()) == str(path)), None)
    except FtwizError:
        return None
    if raw is None or not raw.get("source_run") or raw.get("size") != path.stat().st_size:
        return None
    for folder in (raw.get("source_run_dir"), RunDir.named(str(raw["source_run"])).root):
        if folder and (Path(folder) / "recipe.yaml").is_file():
            return RunDir(Path(folder))
    return None


def record_ollama(gguf_path: str | Path, name: str, host: str) -> ModelEntry:
    """Remember that a GGUF is registered with Ollama as ``name`` (called by ``ftwiz register``)."""
    path = Path(gguf_path).expanduser().resolve()
    raw = _upsert(path, size=path.stat().st_size if path.is_file() else None, source_run=_source_run(path))
    if not raw.get("quant") and path.is_file():
        raw["quant"] = _quant(path)
    regs = [r for r in raw.get("ollama", []) if not (r.get("name") == name and r.get("host") == host)]
    regs.append({"name": name, "host": host, "registered_at": _now()})
    raw["ollama"] = regs
    key = str(Path(raw["path"]).resolve())
    models = [m for m in _load() if str(Path(m["path"]).resolve()) != key] + [raw]
    _save(models)
    return _entry(raw)


def list_models() -> list[ModelEntry]:
    """Registry entries plus every run's GGUFs (RunDir.exports), one entry per file, sorted by path."""
    by_path: dict[str, ModelEntry] = {}
    for raw in _load():
        entry = _entry(raw)
        by_path[str(Path(entry.path).resolve())] = entry
    for run in list_runs():
        for export in run.exports():
            key = str(export.path)
            if key in by_path:
                continue
            by_path[key] = ModelEntry(path=key, size=export.path.stat().st_size, quant=export.quant,
                                      source_run=run.name, role=export.role)
    for entry in by_path.values():
        if entry.exists and entry.size is None:
            entry.size = Path(entry.path).stat().st_size
    return sorted(by_path.values(), key=lambda e: e.path)


def find_model(query: str) -> ModelEntry:
    """One model by path, file name, file stem, Ollama name or run name; FtwizError if none or ambiguous."""
    entries = list_models()
    as_path = Path(query).expanduser()
    if as_path.exists():
        key = str(as_path.resolve())
        for entry in entries:
            if entry.path == key:
                return entry
        if as_path.is_file() and as_path.suffix.lower() == ".gguf":  # copied or moved here: what the file says
            from ftwiz.core.gguf_info import read_gguf_info
            from ftwiz.core.trained_context import read_gguf_context

            read_gguf_info(as_path)  # a text file or a cut-off copy was shown as a model of unknown quant
            context = read_gguf_context(as_path)
            return ModelEntry(path=key, size=as_path.stat().st_size, quant=_quant(as_path),
                              source_run=context.source_run if context else None)
    run = next((r for r in list_runs() if r.name == query), None)
    newest = run.latest_gguf() if run is not None else None
    if newest is not None:  # a run name means the run's own newest fine-tuned export, never its base copy
        return next(e for e in entries if e.path == str(newest))
    matches = [e for e in entries if query in (e.name, Path(e.path).stem)
               or (e.role == "fine-tuned" and query == e.source_run)
               or any(r.name == query or r.name.split(":")[0] == query for r in e.ollama)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FtwizError(f"no exported model matches '{query}'", where="MODEL",
                         fix="see `ftwiz models list` for paths, file names, runs and Ollama names")
    raise FtwizError(f"'{query}' matches {len(matches)} models: " + ", ".join(e.path for e in matches),
                     where="MODEL", fix="give the full path")


def forget(entry: ModelEntry) -> None:
    """Drop an entry from the registry (the file stays)."""
    key = str(Path(entry.path).resolve())
    models = _load()
    kept = [m for m in models if str(Path(m["path"]).resolve()) != key]
    if len(kept) != len(models):
        _save(kept)
