"""Carry a child job's output from its reader threads to a screen, batched.

``post_message`` is thread-safe, but one message per event costs the UI a dispatch each; a fast trainer
(or a starved CPU) would then queue key presses behind hundreds of step messages. So the reader threads
append to a queue and post a single :class:`ChildOutput` only when none is pending; the screen drains
everything that arrived in one go, in order (the exit always comes after the child's last event).
Widgets are only ever touched on the UI thread.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from ftwiz.tui.worker import ChildJob
from textual.message import Message
from textual.message_pump import MessagePump


@dataclass(frozen=True)
class ChildEvent:
    """One ftwiz event (``ftwiz.core.events``) from the child's stdout."""

    event: Any


@dataclass(frozen=True)
class ChildLine:
    """A line that is not an event: stderr (warnings, tracebacks) or stray stdout."""

    line: str


@dataclass(frozen=True)
class ChildExited:
    """The child has exited and all its output is ahead of this in the queue."""

    returncode: int


ChildItem = ChildEvent | ChildLine | ChildExited


class ChildOutput(Message):
    """Something arrived from the child; call :meth:`drain` on the UI thread to take it all."""

    def __init__(self, queue: OutputQueue) -> None:
        super().__init__()
        self.queue = queue

    def drain(self) -> list[ChildItem]:
        return self.queue.drain()

    def dispatch_to(self, screen) -> None:
        """Hand each item to the screen's ``child_event`` / ``child_line`` / ``child_exited``, in order."""
        for item in self.drain():
            if isinstance(item, ChildEvent):
                screen.child_event(item)
            elif isinstance(item, ChildLine):
                screen.child_line(item)
            else:
                screen.child_exited(item)


class OutputQueue:
    """Thread-safe queue with at most one ChildOutput message in flight to ``target``."""

    def __init__(self, target: MessagePump) -> None:
        self.target = target
        self._items: deque[ChildItem] = deque()
        self._lock = threading.Lock()
        self._posted = False

    def put(self, item: ChildItem) -> None:
        with self._lock:
            self._items.append(item)
            if self._posted:
                return
            self._posted = True
        self.target.post_message(ChildOutput(self))

    def drain(self) -> list[ChildItem]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._posted = False
        return items


def start_child(target: MessagePump, command: list[str], env: dict[str, str] | None = None) -> ChildJob:
    """Start ``command``; its events, lines and exit reach ``target`` as batched ChildOutput messages."""
    queue = OutputQueue(target)
    job = ChildJob(
        command,
        on_event=lambda event: queue.put(ChildEvent(event)),
        on_line=lambda line: queue.put(ChildLine(line)),
        on_exit=lambda code: queue.put(ChildExited(code)),
        env=env,
    )
    job.start()
    return job
