"""How long to train, refused alike in a recipe and on the command line: `max_steps: 0` was accepted (transformers
then trains for the epochs, silently) while `ftwiz train --max-steps 0` was refused, and `num_train_epochs: 1e308`
or `.inf` passed validation. One rule (core/recipe.py's max_steps_problem / epochs_problem) serves both."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_cli import one_line


def _validate(tmp_path: Path, line: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    from ftwiz.core.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: demo\ndataset: [demo]\n{line}\n", encoding="utf-8")
    code = main(["recipe", "validate", str(recipe)])
    return code, one_line(capsys.readouterr().err), recipe


@pytest.mark.parametrize(("line", "said"), [
    ("max_steps: 0", "'max_steps': 0 is not a number of steps: give 1 to 10,000,000 steps, or -1 to train for "
                     "num_train_epochs (transformers would read it as -1, silently) (got 0)"),
    ("max_steps: -5", "'max_steps': -5 is not a number of steps"),
    ("max_steps: 20000000", "'max_steps': 20,000,000 steps is more than 10,000,000 (months of training)"),
    ("num_train_epochs: 1.0e+308", "'num_train_epochs': 1e+308 epochs is more than 1000: each record would be "
                                   "learned 1e+308 times, which memorises the data and runs for ages; give at most "
                                   "1000 (a fixed length: max_steps)"),
    ("num_train_epochs: .inf", "'num_train_epochs': inf is not a number of passes over the data"),
    ("num_train_epochs: 0", "'num_train_epochs': 0.0 is not a number of passes over the data: give more than 0"),
])
def test_a_recipe_training_length_out_of_range_is_refused_with_file_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, said: str) -> None:
    code, err, recipe = _validate(tmp_path, line, capsys)
    assert code == 2
    assert err.startswith(f"error: {recipe}, line 3: invalid recipe: - line 3, {said}")


def test_max_steps_minus_one_and_the_cli_follow_the_same_rule(tmp_path: Path, ftwiz_env: dict[str, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    assert _validate(tmp_path, "max_steps: -1\nnum_train_epochs: 1000", capsys)[0] == 0  # transformers' default
    reason = _validate(tmp_path, "max_steps: 0", capsys)[1].split("'max_steps': ")[1].split(" (got 0)")[0]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    for command in (["train", str(recipe), "--run-name", "zero-steps"], ["demo", "--no-serve"]):
        assert main([*command, "--max-steps", "0"]) == 2
        assert one_line(capsys.readouterr().err).startswith(f"error: --max-steps {reason} fix: ")
    assert not (ftwiz_env["runs"] / "zero-steps").exists()
