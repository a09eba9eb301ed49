"""The one stream through which long jobs (training, export) report progress.

Core code emits typed events to an :class:`EventBus`; subscribers render them (rich in the CLI, widgets
in the wizard) or keep them (``runs/<name>/events.jsonl``). Across a process boundary the same events
travel as JSON lines (``ftwiz train ... --events -``) and are read back with :func:`parse_event`, so the
wizard sees exactly what the CLI sees.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    # defer_build: each event's validator is built on its first use, not at import (~0.05 CPU-s of every
    # command's start-up; an export only ever builds Progress, Message and Finished)
    model_config = ConfigDict(extra="forbid", defer_build=True)
    time: float = Field(default_factory=time.time, description="Unix time the event was emitted")


class Started(_Event):
    type: Literal["started"] = "started"
    run_dir: str
    method: str
    total_steps: int
    resumed_from_step: int = 0
    device: str = "cpu"
    micro_batch: int = 1
    grad_accum: int = 1


class Step(_Event):
    type: Literal["step"] = "step"
    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    tokens_seen: int | None = Field(None, description="Non-padding tokens trained on so far")
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


class Eval(_Event):
    type: Literal["eval"] = "eval"
    step: int
    loss: float
    perplexity: float
    rewards_margins: float | None = Field(None, description="Preference stages: mean reward margin on held-out pairs")
    rewards_accuracy: float | None = Field(None, description="Preference stages: share of held-out pairs won")


class CheckpointSaved(_Event):
    type: Literal["checkpoint"] = "checkpoint"
    step: int
    path: str


class BackOff(_Event):
    type: Literal["backoff"] = "backoff"
    step: int
    reason: str
    old_micro_batch: int
    new_micro_batch: int
    new_grad_accum: int


class Progress(_Event):
    """Progress of a non-training job (merge, export, verify): ``done`` of ``total`` units."""

    type: Literal["progress"] = "progress"
    stage: str
    done: float
    total: float
    message: str = ""


class Message(_Event):
    type: Literal["message"] = "message"
    level: Literal["info", "warning"] = "info"
    text: str


class Finished(_Event):
    type: Literal["finished"] = "finished"
    status: Literal["completed", "cancelled"] = "completed"
    output_path: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


class Failed(_Event):
    type: Literal["failed"] = "failed"
    reason: str
    fix: str | None = None
    step: int | None = None


Event = Annotated[
    Started | Step | Eval | CheckpointSaved | BackOff | Progress | Message | Finished | Failed,
    Field(discriminator="type"),
]
EVENT_TYPES = ("started", "step", "eval", "checkpoint", "backoff", "progress", "message", "finished", "failed")


@cache
def _event_adapter() -> TypeAdapter[Event]:
    """The validator of the whole union, built when first needed (readers of events), not at import."""
    return TypeAdapter(Event)


def parse_event(line: str | dict) -> Event:
    """Read one event back from a JSON line (or an already-decoded dict)."""
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
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._owns = True
        else:
            self._fh = target
            self._owns = False
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = event.model_dump_json()
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._owns:
            self._fh.close()
