"""Preference data in the wizard: the data step offers dpo (default), orpo or kto and shows chosen vs
rejected; the choice is the stage of the recipe trained; the train screen shows rewards, margin and
accuracy from the steps (the fake trainer emits them for a preference stage, as TRL logs them)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from ftwiz.core.paths import runs_dir

from .conftest import fake_train_command
from .helpers import screen_text, wait_until

PAIRS = [{"prompt": f"Name fruit number {n}.", "chosen": f"Arr, fruit {n} be a mango, matey!",
          "rejected": "No idea."} for n in range(1, 9)]


async def test_preference_data_offers_the_stage_and_trains_with_it(make_app, tmp_path: Path) -> None:
    from ftwiz.tui.screens.data import DataScreen
    from ftwiz.tui.screens.train import TrainScreen
    from textual.widgets import Select

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in PAIRS), encoding="utf-8")
    app = make_app(offer_resume=False, train_command=fake_train_command(steps=10, sleep=0.01))
    async with app.run_test(size=(120, 60)) as pilot:
        app.state.recipe = app.load_recipe().model_copy(update={"dataset": [str(data)]})
        app.goto("data")
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.usable, what="data check")
        screen = app.screen
        row, select = screen.query_one("#stage-row"), screen.query_one("#stage", Select)
        assert not row.has_class("hidden") and select.value == "dpo" and app.state.recipe.stage == "dpo"
        await wait_until(pilot, lambda: "What dpo learns" in screen_text(app) or "no preview" in screen_text(app),
                         timeout=120, what="preview")
        text = screen_text(app)
        first, learns = text.split("What dpo learns", 1)
        assert "chosen: Arr, fruit 1 be a mango, matey!" in first and "rejected: No idea." in first
        assert "chosen (" in learns and "made more likely" in learns and "mango, matey!" in learns
        assert "rejected (" in learns and "made less likely" in learns and "No idea." in learns

        select.value = "orpo"  # the user picks another stage
        await wait_until(pilot, lambda: app.state.recipe.stage == "orpo", what="stage orpo in the recipe")

        app.goto("train")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.status == "completed",
                         what="training to complete")
        train = app.screen
        assert yaml.safe_load((runs_dir() / "fake-run" / "recipe.yaml").read_text())["stage"] == "orpo"
        line = train.query_one("#pref-line")
        assert not line.has_class("hidden")
        shown = " ".join(str(line.render()).split())
        # the last step's figures (step 10 of the fake trainer: +0.10, -0.20, +0.30, 100%)
        assert shown == "rewards chosen +0.1000 rejected -0.2000 margin +0.3000 accuracy 100%", shown
        log = "\n".join(str(strip.text) for strip in train.query_one("#log").lines)
        assert "reward margin +0.3000, accuracy 100%" in log and "perplexity" not in log


async def test_conversation_data_hides_the_stage_and_trains_sft(make_app) -> None:
    from ftwiz.tui.screens.data import DataScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 60)) as pilot:
        # a stage picked for earlier preference data does not stick to conversations
        app.state.recipe = app.load_recipe().model_copy(update={"stage": "dpo"})
        app.goto("data")
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.usable, what="data check")
        assert app.screen.query_one("#stage-row").has_class("hidden")
        assert app.state.recipe.stage == "sft"
        await app.workers.wait_for_complete()
