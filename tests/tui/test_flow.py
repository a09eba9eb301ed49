"""The wizard walked with the keyboard, accepting every default, as a first-time user would."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .conftest import fake_train_command
from .helpers import screen_text, wait_until


async def _continue_to(pilot, screen_cls, timeout: float = 120.0) -> None:
    """Press Enter on the focused Continue button and wait for the next step to be on screen."""
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, screen_cls), timeout=timeout,
                     what=screen_cls.__name__)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_defaults_lead_from_doctor_through_plan_to_training(make_app, demo_base_model: Path) -> None:
    from ftwiz.tui.screens.data import DataScreen
    from ftwiz.tui.screens.doctor import DoctorScreen
    from ftwiz.tui.screens.export import ExportScreen
    from ftwiz.tui.screens.model import ModelScreen
    from ftwiz.tui.screens.plan import PlanScreen
    from ftwiz.tui.screens.train import TrainScreen

    app = make_app(train_command=fake_train_command(steps=8, sleep=0.0), offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DoctorScreen)
        assert "GeForce RTX 4060" in screen_text(app)  # the recorded machine's GPU
        await _continue_to(pilot, ModelScreen)
        assert app.screen.query_one("#model").value == "demo"
        await _continue_to(pilot, DataScreen)
        assert app.screen.usable, screen_text(app)
        assert app.state.check[0][1].kept > 0
        await _continue_to(pilot, PlanScreen)
        assert app.state.plan is not None and app.state.plan.fits
        assert "micro-batch" in screen_text(app)
        await _continue_to(pilot, TrainScreen)
        await wait_until(pilot, lambda: app.screen.status == "completed", what="the fake training")
        await _continue_to(pilot, ExportScreen)
        assert "fake-run" in screen_text(app)


async def test_back_returns_to_the_previous_step(make_app) -> None:
    from ftwiz.tui.screens.data import DataScreen
    from ftwiz.tui.screens.doctor import DoctorScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.goto("data")
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen), what="data")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, DoctorScreen), what="doctor")
        await pilot.press("escape")  # the first step stays
        await pilot.pause()
        assert isinstance(app.screen, DoctorScreen)


async def test_a_bad_dataset_blocks_continue_and_names_the_file(make_app, tmp_path: Path) -> None:
    from ftwiz.tui.screens.data import DataScreen

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"instruction": "hi", "output": "hello"}\n{not json\n')
    app = make_app(offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.goto("data")
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.query("#dataset"),
                         what="data")
        await app.workers.wait_for_complete()
        field = app.screen.query_one("#dataset")
        field.value = str(tmp_path / "missing.jsonl")
        field.focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        error = str(app.screen.query_one("#error").render())
        assert "missing.jsonl" in error
        assert not app.screen.usable
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DataScreen)


async def test_help_opens_and_closes_with_f1_and_theme_toggles(make_app) -> None:
    from ftwiz.tui.screens.help import HelpScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before and app.theme in ("textual-light", "textual-dark")


def _pipeline_ready() -> bool:
    names = ("ftwiz.core.cli.train", "ftwiz.core.cli.export", "ftwiz.core.deploy.chat")
    return all(importlib.util.find_spec(name) is not None for name in names)


@pytest.mark.slow
@pytest.mark.skipif(not _pipeline_ready(), reason="train, export and chat are not in this checkout yet")
async def test_accepting_every_default_runs_the_demo_to_a_chat_reply(machine: Path, demo_base_model: Path) -> None:
    from ftwiz.tui.app import FtwizApp, recorded_hardware
    from ftwiz.tui.screens.chat import ChatScreen
    from ftwiz.tui.screens.data import DataScreen
    from ftwiz.tui.screens.deploy import DeployScreen
    from ftwiz.tui.screens.export import ExportScreen
    from ftwiz.tui.screens.model import ModelScreen
    from ftwiz.tui.screens.plan import PlanScreen
    from ftwiz.tui.screens.train import TrainScreen

    app = FtwizApp(hardware_loader=recorded_hardware(machine.parent / "no_gpu.json"), offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        for screen_cls in (ModelScreen, DataScreen, PlanScreen, TrainScreen):
            await _continue_to(pilot, screen_cls)
        await wait_until(pilot, lambda: app.screen.status in ("completed", "failed"), timeout=600,
                         what="demo training")
        assert app.screen.status == "completed", str(app.screen.query_one("#error").render())
        await _continue_to(pilot, ExportScreen)
        await pilot.press("enter")  # Export is focused; Q8_0 is the demo recipe's quantization
        await wait_until(pilot, lambda: app.state.gguf_path is not None
                         or not app.screen.query_one("#error").has_class("hidden"), timeout=600, what="export")
        assert app.state.gguf_path and Path(app.state.gguf_path).is_file(), screen_text(app)
        await _continue_to(pilot, DeployScreen)
        await _continue_to(pilot, ChatScreen)
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: app.screen.replies or not app.screen.query_one("#error").has_class("hidden"),
                         timeout=300, what="a chat reply")
        assert app.screen.replies and app.screen.replies[0].strip(), screen_text(app)


async def test_editing_the_plan_recomputes_it_and_training_gets_the_edit(make_app, demo_base_model: Path) -> None:
    from ftwiz.tui.screens.plan import PlanScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.goto("plan")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
                         timeout=120, what="the first plan")
        first = app.screen.plan
        # planned from the demo data's measured lengths, as `ftwiz train` plans (not from cutoff_len alone)
        assert any("the longest of your" in reason for reason in first.reasons), first.reasons
        field = app.screen.query_one("#cutoff_len")
        field.value = "32"
        await wait_until(pilot, lambda: app.screen.plan is not None and app.screen.plan is not first,
                         timeout=120, what="the plan to be recomputed")
        assert app.screen.plan.max_seq_len <= 32 < first.max_seq_len
        assert app.state.recipe.cutoff_len == 32
        assert "cutoff_len" in app.state.recipe.model_fields_set
        field.value = "4"  # below the schema's minimum: said, not planned
        await pilot.pause(0.6)
        assert "cutoff_len" in str(app.screen.query_one("#error").render())
        assert app.state.recipe.cutoff_len == 32


async def test_data_step_shows_the_learned_tokens_and_the_length_histogram(make_app) -> None:
    from ftwiz.tui.screens.data import DataScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.goto("data")
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.query("#preview"),
                         what="data")
        await wait_until(pilot, lambda: "What the model learns" in screen_text(app) or "no preview" in screen_text(app),
                         timeout=120, what="preview")
        preview = screen_text(app)
        assert "Ahoy!" in preview and "matey" in preview  # the demo answer, learned
        assert "Token lengths" in preview and "#" in preview and "steps per epoch" in preview


async def test_model_step_lists_models_with_sizes_and_whether_each_fits(make_app, monkeypatch) -> None:
    from ftwiz.tui.screens.model import ModelScreen

    monkeypatch.setattr("ftwiz.core.planner.catalog.cached_model_ids", lambda: [])
    app = make_app(offer_resume=False)  # the recorded RTX 4060 (8 GB)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.goto("model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelScreen)
                         and "Models for this machine" in screen_text(app), timeout=60, what="model list")
        text = screen_text(app)
        lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") >= 4}
        assert "yes, lora" in lines["demo"]
        assert "yes" in lines["Qwen/Qwen2.5-1.5B-Instruct"] and "not downloaded" in lines["Qwen/Qwen2.5-1.5B-Instruct"]
        assert "no (" in lines["meta-llama/Llama-3.1-8B-Instruct"]  # 8B at 1024 tokens needs more than 8 GB
        assert "8.03B" in lines["meta-llama/Llama-3.1-8B-Instruct"]
