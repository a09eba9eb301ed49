"""An error names its place once: ``error: --var expects NAME=VALUE``, not ``error: --var: --var expects ...``
(every verb printed the flag, then a message that already began with it)."""

from __future__ import annotations

from pathlib import Path

from bad_input_cli import ftwiz, refused
from ftwiz.core.errors import FtwizError, Location


def test_train_var_without_a_value_names_the_flag_once(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    err = refused(ftwiz("train", str(recipe), "--var", "x", cwd=tmp_path))
    assert err.startswith("error: --var expects NAME=VALUE, got 'x' fix: e.g. --var name=Aria"), err
    assert err.count("--var") == 2, err  # the message and the fix, not a third time in front


def test_a_place_the_message_does_not_begin_with_is_still_shown() -> None:
    # the flag or field another flag's message names later, or a longer word, is not the same place
    assert FtwizError("port 8080 on 127.0.0.1 is already in use", where="--port").render().startswith(
        "--port: port 8080")
    assert FtwizError("--variables is not an option", where="--var").headline() == "--var: --variables is not an option"
    assert FtwizError("/a/b.txt is empty", where="/a/b").headline() == "/a/b: /a/b.txt is empty"
    # a field or file alone is named by its bare name at the start; file and line together stay in front
    assert FtwizError("cutoff_len 0 leaves no token to score", where=Location(field="cutoff_len")).headline() == (
        "cutoff_len 0 leaves no token to score")
    assert FtwizError("chat template file not found", where=Location(field="template")).headline() == (
        "field 'template': chat template file not found")
    assert FtwizError("x.yaml is empty", where=Location(file="x.yaml", line=3)).headline() == (
        "x.yaml, line 3: x.yaml is empty")
