"""``--var NAME=VALUE`` as a user meets it: each ``{{placeholder}}`` filled exactly once from the text as written
(a value is inserted literally, braces and all), a misspelled NAME refused before a run folder is made, and the
values part of the dataset hash.

Training is stopped by a pre-set cancel flag right after the data step has written the run's ``data/`` splits,
so each run here costs the data step only. Oracles: the texts filled by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.errors import FtwizError
from ftwiz.core.rundir import RunDir
from stopped_flag import StoppedFlag

SYSTEM = "You are {{name}}, made by {{author}}."
ROWS = [("Who are you?", "I am {{name}}."), ("Who made you?", "{{author}} made me."), ("Your name?", "{{name}}.")]


def _recipe(tmp_path: Path, model: Path, run_name: str, **extra: object) -> Path:
    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in ROWS), encoding="utf-8")
    fields = {"model_name_or_path": str(model), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
              "cutoff_len": 64, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
              "run_name": run_name, **extra}
    path = tmp_path / f"{run_name}.yaml"
    path.write_text(yaml.safe_dump(fields), encoding="utf-8")
    return path


def _trained_on(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_var_value_with_braces_is_trained_literally_also_on_resume(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list) -> None:
    import transformers

    recipe = _recipe(tmp_path, tiny_qwen2, "literal-braces", system=SYSTEM)
    # a user's Mustache example as the name: filled once from the recipe's text, never again
    assert cli_main(["train", str(recipe), "--var", "name={{author}}", "--var", "author=Sam"]) == 130
    system = "You are {{author}}, made by Sam."  # SYSTEM filled by hand
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    for resumed in (False, True):  # the new run, then `ftwiz train --resume` of it (its stored, filled prompt)
        if resumed:
            assert cli_main(["train", "--resume", "literal-braces"]) == 130
        records = _trained_on(ftwiz_env["runs"] / "literal-braces")
        assert {r["messages"][0]["content"] for r in records} == {system}
        assert sorted(r["messages"][-1]["content"] for r in records) == ["I am {{author}}.", "Sam made me.",
                                                                         "{{author}}."]
        seen = [tok.decode(row["input_ids"]) for row in stop_after_data[-1].train]  # what the model is fed
        assert len(seen) == 3 and all(system in text for text in seen), seen
    assert len(stop_after_data) == 2


def test_train_refuses_a_misspelled_var_naming_the_placeholders_and_makes_no_run(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list, capsys) -> None:
    # the recipe fills {{name}} itself, so the typo would silently train "Aria" instead of "Bob"
    recipe = _recipe(tmp_path, tiny_qwen2, "typo-var", variables={"name": "Aria", "author": "Sam"})
    assert cli_main(["train", str(recipe), "--var", "nmae=Bob"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--var nmae: no {{nmae}}" in err and "the placeholders there are {{author}}, {{name}}" in err, err
    assert "did you mean --var name=VALUE instead of --var nmae=VALUE" in err, err
    assert not (ftwiz_env["runs"] / "typo-var").exists() and stop_after_data == []  # before any run folder


def test_an_unused_name_under_the_recipes_variables_is_a_warning(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list, capsys) -> None:
    recipe = _recipe(tmp_path, tiny_qwen2, "shared-recipe", variables={"name": "Aria", "author": "Sam",
                                                                         "colour": "blue"})
    assert cli_main(["train", str(recipe)]) == 130  # trained (up to the pre-set stop), not refused
    err = " ".join(capsys.readouterr().err.split())
    assert "variables: colour fills nothing: no {{colour}} in the system prompt or data" in err, err
    assert "I am Aria." in [r["messages"][-1]["content"] for r in _trained_on(ftwiz_env["runs"] / "shared-recipe")]


@pytest.mark.parametrize("action", ["check", "preview"])
def test_data_check_and_preview_refuse_a_misspelled_var(tmp_path: Path, tiny_qwen2: Path, action: str,
                                                        capsys) -> None:
    data = Path(yaml.safe_load(_recipe(tmp_path, tiny_qwen2, "data").read_text())["dataset"][0])
    assert cli_main(["data", action, str(data), "--var", "name=Aria", "--var", "autor=Sam"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--var autor: no {{autor}}" in err and "{{author}}, {{name}}" in err, err
    assert "did you mean --var author=VALUE" in err, err


def test_data_check_says_an_empty_var_as_train_does(tmp_path: Path, tiny_qwen2: Path, capsys) -> None:
    """`ftwiz data check --var name=` (an unset shell variable) filled {{name}} with nothing, unsaid; ftwiz train
    says it. Oracle: the filled record the check reports."""
    data = Path(yaml.safe_load(_recipe(tmp_path, tiny_qwen2, "data").read_text())["dataset"][0])
    assert cli_main(["data", "check", str(data), "--var", "name=", "--var", "author=Sam"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: --var name is empty: {{name}} becomes empty text" in err, err
    assert cli_main(["data", "check", str(data), "--var", "name=Aria", "--var", "author=Sam"]) == 0
    assert "is empty" not in capsys.readouterr().err


def test_the_values_are_part_of_the_dataset_hash_and_a_rerun_with_another_value_is_refused(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list, capsys) -> None:
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.train.runner import train

    recipe = load_recipe(_recipe(tmp_path, tiny_qwen2, "x", variables={"author": "Sam"}))
    hashes = {}
    for run_name, name in (("hash-aria", "Aria"), ("hash-bob", "Bob")):
        result = train(recipe.model_copy(update={"variables": {"author": "Sam", "name": name}}), run_name=run_name,
                       cancel=StoppedFlag())
        assert result.status == "cancelled"
        assert f"I am {name}." in [r["messages"][-1]["content"] for r in _trained_on(Path(result.run_dir))]
        hashes[name] = json.loads(RunDir(Path(result.run_dir)).run_card.read_text())["dataset_hash"]
    assert hashes["Aria"] != hashes["Bob"]  # the run card tells the two datasets apart
    # the cancelled run 'hash-aria' continued under its name with another value: refused, naming the data
    with pytest.raises(FtwizError, match="the dataset changed"):
        train(recipe.model_copy(update={"variables": {"author": "Sam", "name": "Bob"}}), run_name="hash-aria",
              cancel=StoppedFlag())
    assert "I am Aria." in [r["messages"][-1]["content"] for r in _trained_on(ftwiz_env["runs"] / "hash-aria")]


def test_train_on_several_gpus_refuses_var_it_could_not_pass_on(tmp_path: Path, tiny_qwen2: Path,
                                                               ftwiz_env: dict[str, Path], capsys) -> None:
    # the processes --gpus launches load the recipe file alone: the value would be dropped, {{name}} unfilled
    recipe = _recipe(tmp_path, tiny_qwen2, "gpus-var", variables={"author": "Sam"})
    assert cli_main(["train", str(recipe), "--gpus", "2", "--cpu-procs", "--var", "name=Aria"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--var and --allow-placeholders do not reach the processes --gpus launches" in err, err
    assert "variables:" in err and not (ftwiz_env["runs"] / "gpus-var").exists()


def test_ftwiz_data_and_ftwiz_train_read_a_var_value_exactly_as_typed() -> None:
    """`ftwiz data preview --var` trimmed the value's outer spaces while `ftwiz train --var` kept them, so the
    preview showed other text than training used. Oracle: the value as the user typed it."""
    import argparse

    from ftwiz.core.cli.data import _var_values as data_values
    from ftwiz.core.cli.train import _var_values as train_values

    typed = ["{{name}}=  Aria ", "motto=a = b", "empty="]
    expected = {"name": "  Aria ", "motto": "a = b", "empty": ""}
    assert data_values(typed) == expected
    assert train_values(argparse.Namespace(var=typed)) == expected


def test_an_empty_var_is_said_and_a_var_given_twice_is_refused(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list, capsys) -> None:
    """`--var name=$NAME` with NAME unset trained "I am ." without a word; `--var name=Aria --var name=Bob` kept
    Bob silently. Oracle: the filled text training uses."""
    recipe = _recipe(tmp_path, tiny_qwen2, "empty-var")
    assert cli_main(["train", str(recipe), "--var", "name=", "--var", "author=Sam"]) == 130  # trained, and said
    err = " ".join(capsys.readouterr().err.split())
    assert "--var name is empty: {{name}} becomes empty text" in err, err
    assert "I am ." in [r["messages"][-1]["content"] for r in _trained_on(ftwiz_env["runs"] / "empty-var")]
    again = _recipe(tmp_path, tiny_qwen2, "twice-var")
    assert cli_main(["train", str(again), "--var", "name=Aria", "--var", "name=Bob", "--var", "author=Sam"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--var name is given twice ('Aria', then 'Bob')" in err, err
    assert not (ftwiz_env["runs"] / "twice-var").exists()
