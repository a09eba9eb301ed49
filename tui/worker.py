"""Run a long job (training, export) in a child process and read its event stream.

Why a child process and not a thread: a crash, an out-of-memory kill or a hung CUDA call in training must
not take the wizard down, and cancelling must be a signal the trainer handles (SIGINT -> save a checkpoint,
emit ``finished(status="cancelled")``), not a thread we cannot stop.

The runner is generic: a command list and callbacks. It knows nothing of Textual, so it is tested on its
own and any screen can drive any ``ftwiz VERB ... --events -`` command with it. Callbacks run on the
reader thread; a Textual caller forwards them with ``post_message`` (thread-safe), never touching widgets
from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

EventCallback = Callable[[Any], None]
LineCallback = Callable[[str], None]
ExitCallback = Callable[[int], None]


def ftwiz_command(*args: str) -> list[str]:
    """The command that runs an ftwiz CLI verb with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "ftwiz.tui.launcher_main", *args]


@dataclass
class ChildJob:
    """One child process whose stdout is a JSON-lines event stream.

    ``on_event`` gets each parsed event (``ftwiz.core.events`` models); ``on_line`` gets stdout lines that
    are not events and every stderr line (warnings, tracebacks) so the log can show them; ``on_exit``
    gets the exit code once both streams are drained, so the last event always arrives before the exit.
    """

    command: Sequence[str]
    on_event: EventCallback
    on_line: LineCallback = lambda _line: None
    on_exit: ExitCallback = lambda _code: None
    env: dict[str, str] | None = None
    cwd: str | None = None
    _proc: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)
    _cancel_sent: bool = field(default=False, init=False, repr=False)
    returncode: int | None = field(default=None, init=False)

    def start(self) -> None:
        """Spawn the child and the reader threads; returns at once."""
        env = dict(os.environ)
        env.update(self.env or {})
        # Unbuffered child output so events arrive as they are emitted, not in 4 KiB bursts.
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._proc = subprocess.Popen(  # noqa: S603 - a command list we build, no shell
            list(self.command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=env,
            cwd=self.cwd,
            # Own process group: a Ctrl+C in the terminal goes to the wizard, which decides what to cancel.
            start_new_session=True,
        )
        out = threading.Thread(target=self._read_stdout, name="ftwiz-child-stdout", daemon=True)
        err = threading.Thread(target=self._read_stderr, name="ftwiz-child-stderr", daemon=True)
        self._threads = [out, err]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._wait, name="ftwiz-child-wait", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self.returncode is None

    def cancel(self) -> bool:
        """Ask the child to stop cleanly (SIGINT, as Ctrl+C would). True if a signal was sent."""
        if not self.running or self._proc is None:
            return False
        try:
            self._proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return False
        self._cancel_sent = True
        return True

    def kill(self) -> None:
        """Last resort when the child ignores SIGINT (e.g. stuck in a C call)."""
        if self._proc is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the child has exited and its output is drained (for tests and shutdown)."""
        if self._proc is None:
            return None
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for thread in self._threads:
            thread.join(timeout)
        return self._proc.returncode

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        from ftwiz.core.events import parse_event

        for raw in self._proc.stdout:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    event = parse_event(line)
                except (ValueError, json.JSONDecodeError):
                    self.on_line(line)
                    continue
                self.on_event(event)
            else:
                self.on_line(line)

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.rstrip("\n")
            if line.strip():
                self.on_line(line)

    def _wait(self) -> None:
        assert self._proc is not None
        code = self._proc.wait()
        for thread in self._threads:
            thread.join()
        self.returncode = code
        self.on_exit(code)
