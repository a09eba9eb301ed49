"""The plan step's Measure button: a real probe of the demo plan on this CPU, shown next to the estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import MACHINES
from .helpers import screen_text, wait_until


@pytest.fixture
def machine() -> Path:
    """A recorded machine without a GPU: the plan is for the CPU, where the probe really runs here."""
    return MACHINES / "no_gpu.json"


@pytest.mark.slow  # one probe child (imports torch, loads the demo model, trains 3 steps)
async def test_measure_runs_the_probe_and_shows_measured_next_to_estimated(
        make_app, demo_base_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.planner import measured
    from ftwiz.tui.screens.plan import PlanScreen

    monkeypatch.setattr(measured, "store_path", lambda: tmp_path / "measurements.json")
    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 60)) as pilot:
        app.goto("plan")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
                         timeout=180, what="the plan")
        estimated = app.screen.plan
        assert estimated.device == "cpu" and estimated.measured is None
        await pilot.click("#measure")
        await wait_until(pilot, lambda: app.screen.report is not None or "error" in str(
            app.screen.query_one("#error").render()).lower(), timeout=300, what="the measurement")
        assert app.screen.report is not None, str(app.screen.query_one("#error").render())
        text = screen_text(app)
        assert "measured on this machine" in text and "tokens/s" in text
        plan = app.state.plan
        assert plan.measured is not None and plan.measured.peak_bytes > 0 and plan.measured.tokens_per_s > 0
        assert plan.measured.estimate_bytes == estimated.estimate.peak_bytes or plan.micro_batch != estimated.micro_batch
        assert (tmp_path / "measurements.json").exists()  # kept for `ftwiz train` and the next plan


async def test_pressing_train_opens_one_training_step(make_app, demo_base_model: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Enter on the focused Train button starts one run, not two runs racing in the same folder."""
    from ftwiz.tui.screens.plan import PlanScreen

    app = make_app(offer_resume=False)
    opened: list[str] = []
    monkeypatch.setattr(app, "goto", lambda name: opened.append(name))
    async with app.run_test(size=(120, 60)) as pilot:
        app.push_screen(PlanScreen())
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
                         timeout=180, what="the plan")
        app.screen.query_one("#next").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert opened == ["train"]
