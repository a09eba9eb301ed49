"""Small async helpers for Pilot tests: wait on a condition the UI reaches, never a blind sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Let the app process messages until ``condition()`` holds; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        await pilot.pause(0.05)


async def open_deploy(app, pilot: Pilot, gguf: object | None, run_name: str | None = "demo") -> None:
    """Open the wizard's deploy step on ``gguf`` (a path, or None for none), as a finished run leaves it."""
    from ftwiz.tui.screens.deploy import DeployScreen

    if run_name is not None:
        app.state.run_name = run_name
    app.state.gguf_path = str(gguf) if gguf else None
    app.goto("deploy")
    await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen), what="the deploy screen")
    await pilot.pause()


def screen_text(app: object) -> str:
    """The text of every Static on the current screen (tables and rich groups rendered as a user sees them)."""
    from rich.console import Console
    from textual.widgets import Static

    parts = []
    for widget in app.screen.query(Static):  # type: ignore[attr-defined]
        content = widget.content
        if isinstance(content, str):
            parts.append(content)
            continue
        console = Console(width=120, color_system=None)
        with console.capture() as captured:
            console.print(content)
        parts.append(captured.get())
    return "\n".join(parts)


async def key_latency(app: object, key: str, handled: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds from a key arriving (as the terminal driver delivers it) to its visible effect.

    Pilot.press waits for the whole app to go idle, which never happens while a child streams events,
    so it cannot time a key; this posts the key and polls the effect on the same event loop.
    """
    from textual import events

    start = time.perf_counter()
    app.post_message(events.Key(key, None))  # type: ignore[attr-defined]
    while not handled():
        if time.perf_counter() - start > timeout:
            raise AssertionError(f"key {key!r} had no effect within {timeout}s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start
