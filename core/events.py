"""The one stream through which long jobs (training, export) report progress.

Core code emits typed events to an :class:`EventBus`; subscribers render them (rich in the CLI, widgets
in the wizard) or keep them (``runs/<name>/events.jsonl``). Across a process boundary the same events
travel as JSON lines (``ftwiz train ... --events -``) and are read back with :func:`parse_event`, so the
wizard sees exactly what the CLI sees.

The events are standard-library dataclasses, not pydantic models: every command imports this module, and
importing pydantic and building its models cost ~0.2 s of each command's start-up (an ``ftwiz export``
of a small model takes ~1.3 s in all). Writers build events unchecked; readers (:func:`parse_event`,
:func:`read_events`, :func:`event_schema`) validate with pydantic, imported when first needed, which
reads the dataclasses directly (``__pydantic_config__``, field ``metadata`` descriptions).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath
from typing import IO, Any, ClassVar, Literal


def _described(text: str, default: Any = None) -> Any:
    """A field with a default and a description that pydantic puts in :func:`event_schema`."""
    return field(default=default, metadata={"description": text})


def _plain(value: Any) -> Any:
    """``json.dumps``' fallback for what pydantic used to coerce: numpy/torch scalars, paths, number-likes.

    Raises TypeError (as ``json.dumps`` does) for anything else, so a wrong value fails at the writer.
    """
    item = getattr(value, "item", None)
    if callable(item):  # numpy and torch scalars (a float32 loss, an int64 step): the Python number
        return item()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "__float__"):  # Decimal, Fraction and other number types
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable in an event")


def _nan_to_null(value: Any) -> Any:
    """``value`` with every NaN or infinite number as None (JSON has no such numbers; pydantic wrote null)."""
    if isinstance(value, dict):
        return {key: _nan_to_null(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_null(v) for v in value]
    if isinstance(value, (str, int, type(None))):
        return value
    if not isinstance(value, float):
        value = _plain(value)
        if not isinstance(value, float):
            return _nan_to_null(value)
    return value if math.isfinite(value) else None


@dataclass(kw_only=True)
class _Event:
    # read by pydantic when events are parsed back: an unknown key is an error, not silently dropped
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}
    time: float = field(default_factory=time.time, metadata={"description": "Unix time the event was emitted"})

    def to_dict(self) -> dict[str, Any]:
        """The fields in declaration order (``time``, ``type``, ...); values as given, not copied."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        """One compact JSON line (no newline), the keys and order pydantic's ``model_dump_json`` wrote.

        numpy/torch scalars become Python numbers and NaN/infinity null, as before; a value JSON cannot
        hold raises TypeError.
        """
        data = self.to_dict()
        try:
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_plain)
        except ValueError:  # a NaN or infinite number somewhere (a diverged loss): null, still valid JSON
            return json.dumps(_nan_to_null(data), ensure_ascii=False, separators=(",", ":"), default=_plain)


@dataclass(kw_only=True)
class Started(_Event):
    type: Literal["started"] = "started"
    run_dir: str
    method: str
    total_steps: int
    resumed_from_step: int = 0
    device: str = "cpu"
    micro_batch: int = 1
    grad_accum: int = 1


@dataclass(kw_only=True)
class Step(_Event):
    type: Literal["step"] = "step"
    step: int
    total_steps: int
    epoch: float
    # required, but null for a loss that was NaN or infinite: where training diverged (it stops there and a
    # `failed` event follows), or a step fp16 loss scaling skipped (the weights stayed finite; training goes
    # on). The line stays valid JSON and is read back, not skipped.
    loss: float | None = field(metadata={"description": "Mean training loss since the last step event; null "
                                                        "when it was NaN or infinite (training diverged here, "
                                                        "or fp16 loss scaling skipped the step)"})
    lr: float
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    tokens_seen: int | None = _described("Non-padding tokens trained on so far")
    samples_per_s: float | None = None
    eta_s: float | None = None
    # Memory: CUDA allocator numbers and NVML's device view on GPU; resident set size on CPU.
    mem_allocated_bytes: int | None = None
    mem_reserved_bytes: int | None = None
    mem_peak_bytes: int | None = None
    mem_device_used_bytes: int | None = None
    rss_bytes: int | None = None
    # Preference stages (dpo/orpo/kto), from TRL's logs: mean implicit rewards of the chosen and rejected
    # answers, their margin, and the share of pairs whose chosen answer wins (preference accuracy).
    rewards_chosen: float | None = None
    rewards_rejected: float | None = None
    rewards_margins: float | None = None
    rewards_accuracy: float | None = None


@dataclass(kw_only=True)
class Eval(_Event):
    type: Literal["eval"] = "eval"
    step: int
    loss: float
    perplexity: float
    rewards_margins: float | None = _described("Preference stages: mean reward margin on held-out pairs")
    rewards_accuracy: float | None = _described("Preference stages: share of held-out pairs won")


@dataclass(kw_only=True)
class CheckpointSaved(_Event):
    type: Literal["checkpoint"] = "checkpoint"
    step: int
    path: str


@dataclass(kw_only=True)
class BackOff(_Event):
    type: Literal["backoff"] = "backoff"
    step: int
    reason: str
    old_micro_batch: int
    new_micro_batch: int
    new_grad_accum: int


@dataclass(kw_only=True)
class Progress(_Event):
    """Progress of a non-training job (merge, export, verify): ``done`` of ``total`` units."""

    type: Literal["progress"] = "progress"
    stage: str
    done: float
    total: float
    message: str = ""


@dataclass(kw_only=True)
class Message(_Event):
    type: Literal["message"] = "message"
    level: Literal["info", "warning"] = "info"
    text: str


@dataclass(kw_only=True)
class Finished(_Event):
    type: Literal["finished"] = "finished"
    status: Literal["completed", "cancelled"] = "completed"
    output_path: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Failed(_Event):
    type: Literal["failed"] = "failed"
    reason: str
    fix: str | None = None
    step: int | None = None


Event = Started | Step | Eval | CheckpointSaved | BackOff | Progress | Message | Finished | Failed
EVENT_TYPES = ("started", "step", "eval", "checkpoint", "backoff", "progress", "message", "finished", "failed")


@cache
def _event_adapter() -> Any:
    """pydantic's validator of the union, keyed on ``type``; built (and pydantic imported) when first read."""
    from typing import Annotated

    from pydantic import Field, TypeAdapter

    return TypeAdapter(Annotated[Event, Field(discriminator="type")])


def parse_event(line: str | dict) -> Event:
    """Read one event back from a JSON line (or an already-decoded dict).

    Raises ValueError (pydantic's ValidationError, or json's JSONDecodeError) for an unknown ``type``, an
    unknown key, a missing field or a value of the wrong kind.
    """
    data = json.loads(line) if isinstance(line, str) else line
    return _event_adapter().validate_python(data)


def read_events(path: str | Path) -> Iterator[Event]:
    """Every event in an ``events.jsonl``; a torn last line (killed writer) is skipped, not fatal."""
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                yield parse_event(raw)
            except (ValueError, json.JSONDecodeError):
                continue


def event_schema() -> dict[str, Any]:
    """JSON schema of the event stream, for consumers written in other languages."""
    return _event_adapter().json_schema()


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers; thread-safe because trainer callbacks may run off the main thread."""

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self._subscribers: list[Subscriber] = list(subscribers)
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(event)


class JsonlSink:
    """Appends events to a file (or stream) as JSON lines, flushing each so a reader sees it at once."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._fh: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError as exc:  # a folder given as the file, a read-only or non-writable folder
                from ftwiz.core.errors import FtwizError

                raise FtwizError(f"cannot write the events file {target}: {exc.strerror}",
                                 fix="give a file path in a writable folder (--events FILE, or '-' for stdout)"
                                 ) from None
            self._owns = True
        else:
            self._fh = target
            self._owns = False
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = event.to_json()
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._owns:
            self._fh.close()
