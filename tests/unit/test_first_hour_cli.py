"""What a new user meets on the CLI in the first hour (issue 17), checked as they would see it: exit codes,
printed errors and fixes, files left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "ftwiz.tui.launcher_main"]


def ftwiz(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture()
def identity(tmp_path: Path) -> Path:
    """An identity dataset like the shared one: answers with {{name}} and {{author}} in them."""
    rows = [{"instruction": q, "input": "", "output": a} for q, a in [
        ("Who are you?", "I am {{name}}, an assistant made by {{author}}."),
        ("What is your name?", "My name is {{name}}."),
        ("Who made you?", "{{author}} made me."),
        ("Introduce yourself.", "Hello! I am {{name}}, built by {{author}}."),
        ("Are you ChatGPT?", "No, I am {{name}}, trained by {{author}}."),
        ("What should I call you?", "Call me {{name}}."),
        ("Who is your creator?", "I was created by {{author}}."),
        ("Tell me about yourself.", "I am {{name}}, a helpful assistant from {{author}}."),
        ("What are you?", "I am {{name}}, a language model."),
        ("Who trained you?", "{{author}} trained me."),
    ]]
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _recipe(tmp_path: Path, dataset: str, **extra: object) -> Path:
    import yaml

    data = {"model_name_or_path": "demo", "dataset": [dataset], "finetuning_type": "lora", "max_steps": 1,
            "cutoff_len": 128, "val_size": 0.0, "test_size": 0.0, "run_name": "identity-run", **extra}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_train_refuses_unfilled_placeholders_before_making_a_run(identity: Path, tmp_path: Path,
                                                                  ftwiz_env: dict[str, Path]) -> None:
    result = ftwiz("train", str(_recipe(tmp_path, str(identity), run_name="unfilled-run")))
    assert result.returncode == 2
    err = one_line(result.stderr)
    assert "unfilled placeholders {{author}}, {{name}}" in err
    assert "--var author=VALUE --var name=VALUE" in err and "variables:" in err and "--allow-placeholders" in err
    assert not (ftwiz_env["runs"] / "unfilled-run").exists()
    # --var fills some, the rest are still refused, by name
    partly = ftwiz("train", str(_recipe(tmp_path, str(identity))), "--var", "name=Aria")
    assert partly.returncode == 2 and "unfilled placeholders {{author}}" in one_line(partly.stderr)


@pytest.mark.slow
def test_train_fills_placeholders_from_var_and_the_recipe(identity: Path, tmp_path: Path, demo_base_model: Path,
                                                          ftwiz_env: dict[str, Path]) -> None:
    recipe = _recipe(tmp_path, str(identity), variables={"author": "Sam Lee"})
    result = ftwiz("train", str(recipe), "--var", "name=Aria")
    assert result.returncode == 0, result.stderr
    trained_on = (ftwiz_env["runs"] / "identity-run" / "data" / "train.jsonl").read_text(encoding="utf-8")
    assert "I am Aria, an assistant made by Sam Lee." in trained_on and "{{" not in trained_on


def test_recipe_validate_and_train_name_a_missing_dataset_once(tmp_path: Path, ftwiz_env: dict[str, Path]) -> None:
    # its own run name: the session's runs folder is shared, and the placeholder test trains "identity-run"
    recipe = _recipe(tmp_path, str(tmp_path / "nope.jsonl"), run_name="missing-dataset-run")
    validate = ftwiz("recipe", "validate", str(recipe))
    assert validate.returncode == 2 and "dataset not found" in validate.stderr and "dataset[0]" in validate.stderr
    train = ftwiz("train", str(recipe))
    assert train.returncode == 2
    assert train.stderr.count("dataset not found") == 1, train.stderr  # said once, with its fix
    assert "Traceback" not in train.stderr
    assert not (ftwiz_env["runs"] / "missing-dataset-run").exists()  # no `failed` run folder left behind


def test_plan_for_a_model_not_downloaded_points_at_online_and_pull(tmp_path: Path) -> None:
    result = ftwiz("plan", "someone/not-downloaded-7B")
    assert result.returncode == 2
    err = one_line(result.stderr)
    assert "ftwiz plan someone/not-downloaded-7B --online" in err and "ftwiz pull someone/not-downloaded-7B" in err
    assert "huggingface-cli" not in err


def test_help_shows_arguments_actions_and_examples() -> None:
    wizard = ftwiz("wizard", "--help")
    assert wizard.returncode == 0
    assert "recipe" in wizard.stdout and "--machine" in wizard.stdout and "--no-resume" in wizard.stdout
    assert "examples:" in wizard.stdout
    data = ftwiz("data", "--help").stdout
    assert "preview  one sample as the model sees it" in data and "examples:" in data
    assert "data.jsonl -> data.rejects.jsonl" in one_line(data)
    models = ftwiz("models", "--help").stdout
    assert "rm     forget a model" in models
    for verb in ("train", "export", "chat", "serve", "register"):
        assert "examples:" in ftwiz(verb, "--help").stdout, verb


def test_plan_and_stats_print_readable_numbers(demo_base_model: Path) -> None:
    plan = ftwiz("plan", "demo", "--vram-gb", "8")
    assert plan.returncode == 0, plan.stderr
    assert "0.00B" not in plan.stdout and "M parameters" in plan.stdout
    assert "~0.0 min" not in plan.stdout
    stats = ftwiz("data", "stats", "demo")
    assert stats.returncode == 0, stats.stderr
    assert "{}" not in stats.stdout and "rejected 0," in stats.stdout


def test_the_demo_model_on_own_data_says_its_answers_will_barely_change(identity: Path) -> None:
    from ftwiz.core.recipe import parse_recipe
    from ftwiz.core.recipe_inputs import demo_model_note

    note = demo_model_note(parse_recipe({"model_name_or_path": "demo", "dataset": [str(identity)]}))
    assert note and "barely change" in note and "ftwiz pull Qwen/Qwen2.5-0.5B-Instruct" in note
    assert demo_model_note(parse_recipe({"model_name_or_path": "demo", "dataset": ["demo"]})) is None


def test_a_cancel_from_the_wizard_does_not_tell_the_user_to_press_ctrl_c(capsys) -> None:
    import signal

    from ftwiz.core.cli.train import _install_signal_handlers
    from ftwiz.core.train.callbacks import CancelFlag

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        for terminal, expected in ((False, False), (True, True)):
            cancel = CancelFlag()
            _install_signal_handlers(cancel, terminal=terminal)
            signal.raise_signal(signal.SIGINT)  # what the wizard sends when the user presses c
            assert cancel
            err = capsys.readouterr().err
            assert "saving a checkpoint" in err and ("press Ctrl-C again" in err) == expected
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])
