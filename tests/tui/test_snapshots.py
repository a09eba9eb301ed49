"""How each wizard screen looks at 80x24 (the smallest usable terminal) and 120x40.

Deterministic inputs: a recorded machine, the shipped demo recipe and data, fixed ftwiz folders, the
fake training child with fixed event times, and UTC for the log's clock. Update with
``pytest tests/tui/test_snapshots.py --snapshot-update`` after an intended change, and look at the diff.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import fake_train_command
from .helpers import wait_until

SIZES = [(80, 24), (120, 40)]
SNAP_HOME = Path("/tmp/ftwiz-snapshots")


@pytest.fixture
def fixed_home(monkeypatch: pytest.MonkeyPatch, ftwiz_env: dict[str, Path]) -> Path:
    """Fixed ftwiz folders (paths show on screen) and UTC (the event log shows times)."""
    shutil.rmtree(SNAP_HOME / "runs", ignore_errors=True)
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(SNAP_HOME / "runs"))
    monkeypatch.setenv("TZ", "UTC")
    # The model list must not depend on what this machine's Hugging Face cache happens to hold.
    monkeypatch.setattr("ftwiz.core.planner.catalog.cached_model_ids", lambda: [])
    time.tzset()
    yield SNAP_HOME
    monkeypatch.undo()
    time.tzset()


def _app(make_app: Callable[..., object], **kwargs: object) -> object:
    kwargs.setdefault("offer_resume", False)
    return make_app(**kwargs)


async def _settle(pilot) -> None:
    # A finished worker may start the next (the data check starts the preview): settle until none runs.
    for _ in range(20):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in pilot.app.workers):
            break
    # A blinking cursor would make the picture depend on when it is taken: hold every cursor on.
    from textual.widgets import Input, TextArea

    for widget in pilot.app.screen.query("Input, TextArea"):
        if isinstance(widget, Input | TextArea):
            widget.cursor_blink = False
    await pilot.pause()


def _goto(name: str, prepare: Callable[[object], None] | None = None):
    async def run_before(pilot) -> None:
        await _settle(pilot)
        if prepare:
            prepare(pilot.app)
        pilot.app.goto(name)
        await pilot.pause()
        await _settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_doctor(snap_compare, make_app, fixed_home, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_model(snap_compare, make_app, fixed_home, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size, run_before=_goto("model"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_data(snap_compare, make_app, fixed_home, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size, run_before=_goto("data"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_plan(snap_compare, make_app, fixed_home, demo_base_model, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size, run_before=_goto("plan"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_completed(snap_compare, make_app, fixed_home, size) -> None:
    from ftwiz.tui.screens.train import TrainScreen

    async def run_before(pilot) -> None:
        await _settle(pilot)
        pilot.app.goto("train")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen)
                         and pilot.app.screen.status == "completed" and not pilot.app.screen.job.running,
                         what="the fake run")
        await pilot.pause()

    app = _app(make_app, train_command=fake_train_command(steps=30, sleep=0.0, fixed_time=0))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def _exported(app) -> None:
    app.state.run_name = "demo"
    app.state.gguf_path = str(SNAP_HOME / "runs" / "demo" / "export" / "demo-Q8_0.gguf")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_export(snap_compare, make_app, fixed_home, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size,
                        run_before=_goto("export", lambda app: setattr(app.state, "run_name", "demo")))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_deploy(snap_compare, make_app, fixed_home, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size, run_before=_goto("deploy", _exported))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat(snap_compare, make_app, fixed_home, size) -> None:
    assert snap_compare(_app(make_app), terminal_size=size, run_before=_goto("chat", _exported))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, make_app, fixed_home, size) -> None:
    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(_app(make_app), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_doctor_light_theme(snap_compare, make_app, fixed_home, size) -> None:
    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()

    assert snap_compare(_app(make_app), terminal_size=size, run_before=run_before)

