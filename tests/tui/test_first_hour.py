"""What a new user meets in the wizard in the first hour (issue 17): each test is one thing they would see."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import screen_text, wait_until


@pytest.fixture()
def fresh_demo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache and a short demo pre-training (40 steps), so the first-launch build really runs."""
    import ftwiz.core.tiny.demo as demo

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "PRETRAIN_STEPS", 40)
    assert not demo.demo_base_model_ready()
    return tmp_path / "cache"


async def test_first_launch_shows_the_demo_build_with_a_bar_and_time_left(make_app, fresh_demo_cache) -> None:
    from ftwiz.tui.screens.data import DataScreen
    from ftwiz.tui.screens.model import ModelScreen
    from textual.widgets import ProgressBar

    monkeypatch_seen: list[str] = []
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.goto("model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelScreen), what="the model step")
        screen = app.screen
        await pilot.press("ctrl+n")  # Continue with 'demo': not built yet
        bar = screen.query_one("#build", ProgressBar)
        await wait_until(pilot, lambda: not bar.has_class("hidden"), what="the build's progress bar")

        def seen() -> bool:
            text = str(screen.query_one("#resolved").content)
            monkeypatch_seen.append(text)
            return "left" in text and "pre-training the demo model: step" in text

        await wait_until(pilot, seen, timeout=120, what="an estimate of the time left")
        assert bar.total == 40 and 0 < (bar.progress or 0) <= 40
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen), timeout=120, what="the data step")
        # let the data step finish composing before the test closes the app (a Header torn down mid-mount
        # raises inside Textual)
        await wait_until(pilot, lambda: app.screen.query("HeaderTitle"), timeout=30, what="the data step's header")
        await pilot.pause()
    assert any("first launch only" in text for text in monkeypatch_seen)


@pytest.fixture()
def identity_file(tmp_path: Path) -> Path:
    import json

    rows = [{"instruction": f"Question {i}?", "input": "", "output": f"I am {{{{name}}}}, made by {{{{author}}}} ({i})."}
            for i in range(8)]
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


async def _data_step(app, pilot, dataset: str):
    from ftwiz.tui.screens.data import DataScreen

    app.goto("data")
    await wait_until(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.query("#dataset"),
                     what="the data step")
    await app.workers.wait_for_complete()  # the first check (of the recipe's own dataset) is done
    screen = app.screen
    field = screen.query_one("#dataset")
    field.value = dataset
    field.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.usable, timeout=60, what="the dataset check")
    return screen


async def test_data_step_asks_for_placeholder_values_and_training_gets_them(make_app, identity_file) -> None:
    from textual.widgets import Input

    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _data_step(app, pilot, str(identity_file))
        await wait_until(pilot, lambda: len(screen.query("#variables Input")) == 2, what="a field per placeholder")
        assert "unfilled placeholders {{author}}, {{name}}" in screen_text(app)
        await pilot.press("ctrl+n")  # Continue is refused while they are unfilled, and says why
        assert "fill {{author}}, {{name}}" in str(screen.query_one("#error").render())
        screen.query_one("#var-name", Input).value = "Aria"
        screen.query_one("#var-author", Input).value = "Sam"
        screen.query_one("#var-author", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.placeholders and not screen.query("#variables Input"),
                         timeout=60, what="the placeholders to be filled")
        recipe = app.state.recipe
        assert recipe.variables == {"name": "Aria", "author": "Sam"}
        await wait_until(pilot, lambda: "I am Aria, made by Sam" in screen_text(app), timeout=60,
                         what="the filled answer in the preview")


async def test_placeholders_can_be_kept_on_purpose(make_app, identity_file) -> None:
    from ftwiz.tui.screens.plan import PlanScreen
    from textual.widgets import Checkbox

    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _data_step(app, pilot, str(identity_file))
        await wait_until(pilot, lambda: screen.query("#allow-placeholders"), what="the explicit choice")
        screen.query_one("#allow-placeholders", Checkbox).value = True
        await pilot.pause()
        assert app.state.recipe.allow_placeholders
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan step")


async def test_demo_model_on_own_data_says_answers_will_barely_change(make_app, identity_file) -> None:
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _data_step(app, pilot, str(identity_file))
        note = screen.query_one("#demo-note")
        assert not note.has_class("hidden") and "barely change" in str(note.content)
        assert "Qwen/Qwen2.5-0.5B-Instruct" in str(note.content)


async def test_plan_step_uses_the_lengths_the_data_step_measured(make_app, demo_base_model) -> None:
    from ftwiz.tui.screens.plan import PlanScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _data_step(app, pilot, "demo")
        await wait_until(pilot, lambda: app.state.dataset_lengths is not None, timeout=60, what="the measurement")
        lengths = app.state.dataset_lengths[1]
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
                         timeout=120, what="the plan")
        reasons = " ".join(app.screen.plan.reasons)
        assert "no dataset lengths known" not in reasons
        assert app.screen.plan.est_seconds_per_epoch is not None  # a time, as `ftwiz plan` gives
        assert screen is not app.screen and len(lengths) > 0


async def test_model_table_and_doctor_agree_on_cpu_for_1b_models(make_app, monkeypatch) -> None:
    from ftwiz.tui.app import recorded_hardware
    from ftwiz.tui.screens.model import ModelScreen

    from .conftest import MACHINES

    monkeypatch.setattr("ftwiz.core.planner.catalog.cached_model_ids", lambda: [])
    app = make_app(offer_resume=False, hardware_loader=recorded_hardware(MACHINES / "no_gpu.json"))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        assert "for 1B+ models use a machine with an NVIDIA GPU" in screen_text(app)  # the doctor's advice
        app.goto("model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelScreen)
                         and "Models for this machine" in screen_text(app), timeout=60, what="model list")
        lines: dict[str, str] = {}
        last = None
        for line in screen_text(app).splitlines():
            if line.count("│") < 4:
                continue
            name = line.split("│")[1].strip()
            if name:  # a row's first line
                last, lines[name] = name, line
            elif last:  # the verdict wraps onto further lines of the same row
                lines[last] += " " + line.split("│")[-2].strip()
        lines = {name: " ".join(row.split()) for name, row in lines.items()}
        qwen = lines["Qwen/Qwen2.5-1.5B-Instruct"]
        assert "slow on CPU" in qwen and "a GPU is advised" in qwen and "/epoch" in qwen
        assert "yes, lora" in lines["demo"] and "/epoch" in lines["demo"]


async def test_cancel_dialog_shows_its_keys_enter_stops_and_ctrl_n_explains(make_app, monkeypatch) -> None:
    from ftwiz.tui.screens.confirm import ConfirmScreen
    from ftwiz.tui.screens.train import TrainScreen

    from .conftest import fake_train_command

    app = make_app(train_command=fake_train_command(steps=60, sleep=0.3), offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.goto("train")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.status == "running"
                         and len(app.screen.query_one("LossChart").steps) >= 1, what="training to run")
        train = app.screen
        notes: list[str] = []
        monkeypatch.setattr(train, "notify", lambda message, **_kw: notes.append(message))
        await pilot.press("ctrl+n")
        assert notes and "still running" in notes[-1]
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        keys = str(app.screen.query_one("#keys").content)
        assert "Enter: Stop" in keys and "n or Esc: Keep training" in keys
        await pilot.press("enter")  # the user asked to cancel: Enter confirms it
        await wait_until(pilot, lambda: train.status == "cancelled", what="the cancel")


async def test_help_overlay_at_80x24_shows_how_to_close_it(make_app) -> None:
    from ftwiz.tui.screens.help import HelpScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        close = app.screen.query_one("#help-close")
        region = close.region
        assert "Esc or F1 closes" in str(close.content)
        assert region.height == 1 and region.y + 1 <= 24 and close.visible


async def test_doctor_shows_free_disk(make_app) -> None:
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "200.0 GiB free (runs)" in screen_text(app)


async def test_resumed_in_a_new_session_the_chart_keeps_the_earlier_steps(make_app) -> None:
    import json

    from ftwiz.core.events import Step
    from ftwiz.core.paths import runs_dir
    from ftwiz.tui.app import demo_recipe_path
    from ftwiz.tui.screens.train import TrainScreen

    from .conftest import fake_train_command

    run = runs_dir() / "fake-run"  # what a cancelled real run leaves: checkpoint, status and its events
    (run / "checkpoints" / "checkpoint-10").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 10}')
    (run / "recipe.yaml").write_text(demo_recipe_path().read_text())
    (run / "status.json").write_text(json.dumps({"state": "cancelled", "step": 10}))
    with open(run / "events.jsonl", "w") as fh:
        for step in range(1, 13):  # steps 11-12 ran after the checkpoint and are trained again
            fh.write(Step(step=step, total_steps=20, epoch=0.0, loss=3.0 - step / 10, lr=1e-4).to_json() + "\n")
    app = make_app(train_command=fake_train_command(steps=20, sleep=0.0))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: not app.screen.query_one("#resume-offer").has_class("hidden"),
                         what="the resume offer")
        app.screen.query_one("#resume").press()
        await wait_until(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.status == "completed",
                         what="the resumed run")
        assert app.screen.query_one("LossChart").steps == list(range(1, 21))


QUIT_SCRIPT = """
import subprocess, sys, time
from pathlib import Path
from ftwiz.tui.app import FtwizApp, run_app

pidfile = Path(sys.argv[1])

def slow_checks():  # the doctor's first checks: a smoke test in a child process that takes long
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pidfile.write_text(str(child.pid))
    child.wait()
    time.sleep(60)  # and in-process work that cannot be interrupted

async def press_quit(pilot):
    while not pidfile.exists():
        await pilot.pause(0.1)
    await pilot.pause(0.3)
    print("quit pressed", time.monotonic(), flush=True)
    await pilot.press("ctrl+q")

code = run_app(FtwizApp(hardware_loader=slow_checks, offer_resume=False), headless=True, auto_pilot=press_quit)
print("exited", time.monotonic(), code, flush=True)
"""


def test_quitting_while_the_doctor_checks_is_immediate_and_ends_child_processes(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    import psutil

    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, str(pidfile)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    quit_at, exited_at = float(lines["quit"][2]), float(lines["exited"][1])
    assert exited_at - quit_at < 2.0, f"quitting took {exited_at - quit_at:.1f} s"
    assert time.monotonic() - started < 60  # the process itself did not wait for the busy worker either
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


async def test_the_data_step_asks_for_the_system_prompts_placeholders_too(make_app, tmp_path: Path) -> None:
    """A recipe whose `system:` holds {{name}} over data without placeholders: the data step asked for nothing,
    Continue went on, and training then refused the unfilled system prompt with a --var fix the wizard has no
    field for. Oracle: the system turn the data pipeline trains on (prepare_for_training)."""
    import json

    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe_inputs import tokenizer_for, with_filled_system
    from textual.widgets import Input

    data = tmp_path / "shop.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Q{i}?", "output": f"A{i}."}) + "\n" for i in range(8)),
                    encoding="utf-8")
    recipe_file = tmp_path / "shop.yaml"
    recipe_file.write_text(f"model_name_or_path: demo\ndataset: [{json.dumps(str(data))}]\n"
                           "system: You are {{name}}, the shop's assistant.\n", encoding="utf-8")
    app = make_app(recipe_path=recipe_file, offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _data_step(app, pilot, str(data))
        await wait_until(pilot, lambda: screen.query("#var-name"), what="a field for the system prompt's {{name}}")
        await pilot.press("ctrl+n")
        assert "fill {{name}}" in str(screen.query_one("#error").render())
        field = screen.query_one("#var-name", Input)
        field.value = "Aria"
        field.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.placeholders, timeout=60, what="the placeholder to be filled")
        recipe = with_filled_system(app.state.recipe)
    prepared = prepare_for_training(recipe, tokenizer_for(recipe))
    assert prepared.splits["train"][0]["messages"][0] == {"role": "system",
                                                          "content": "You are Aria, the shop's assistant."}
