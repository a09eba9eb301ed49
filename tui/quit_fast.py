"""Quitting the wizard is immediate, whatever its thread workers are doing.

Textual runs ``@work(thread=True)`` functions in the event loop's default executor, and closing the loop
waits for that executor's threads: Ctrl+Q during the doctor's first checks (a torch import, the
bitsandbytes and llama.cpp smoke tests in subprocesses) took 6-17 s to quit, and during the demo
model's build it would take minutes. Two parts fix that:

- :class:`DaemonExecutor` becomes the loop's default executor: each job runs on a daemon thread and
  ``shutdown`` does not wait, so neither the loop nor the interpreter waits for a worker that is
  still busy. Its result is simply never used.
- :func:`end_child_processes` kills what those workers started (the smoke-test subprocesses), so
  nothing is left running behind the user's back. Training and export children are not touched here:
  they are stopped by their screens (SIGINT, a checkpoint) before the wizard exits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class DaemonExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor (asyncio requires the type) that runs each job on its own daemon thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine, as the pool does
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=run, name="ftwiz-worker", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Never waits: a worker still running when the wizard quits is abandoned, not awaited."""


def end_child_processes(keep: set[int] | None = None) -> list[int]:
    """Kill this process's children (and theirs) except the pids in ``keep``; returns the pids killed."""
    import psutil

    killed = []
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return killed
    for child in children:
        if keep and child.pid in keep:
            continue
        try:
            child.kill()
            killed.append(child.pid)
        except psutil.Error:  # already gone
            continue
    return killed
