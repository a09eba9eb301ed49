"""`ftwiz train recipe.yaml` whose `columns:` map a column the data lacks said "--column output=answr (in a recipe:
columns: ...)", naming a flag train does not have, though the user wrote a recipe. Train now asks what `recipe
validate` asks before a run folder is made, and names the recipe file and its key, the dataset file and the columns
it has; a dataset_info.json entry's own "columns" are still named by their entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bad_input_cli import one_line
from ftwiz.core.cli import main


def test_train_names_the_recipe_file_and_key_of_a_mapping_to_a_column_the_data_lacks(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
                            for i in range(4)), encoding="utf-8")
    recipe = tmp_path / "qa.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(tiny_qwen2), "dataset": [str(data)],
                                      "columns": {"instruction": "question", "output": "answr"},
                                      "finetuning_type": "lora", "max_steps": 1}), encoding="utf-8")
    assert main(["train", str(recipe), "--run-name", "cols-named"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err == (f"error: {data}, field 'columns.output': {recipe}'s columns: {{output: answr}} maps 'output' to "
                   "the column 'answr', which no record of qa.jsonl has; its records have the columns answer, question "
                   f"fix: name one of those columns (e.g. columns: {{output: answer}} in {recipe}), or drop the "
                   "mapping"), err
    assert "--column" not in err
    assert not (ftwiz_env["runs"] / "cols-named").exists()  # refused before a run folder is made
    assert main(["recipe", "validate", str(recipe)]) == 2  # the same words as validate's
    assert one_line(capsys.readouterr().err) == err

    # a dataset_info.json entry's own "columns" are named by the entry, not the recipe
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"my_qa": {"file_name": "qa.jsonl", "columns": {"prompt": "question", "response": "answr"}}}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(tiny_qwen2), "dataset": ["my_qa"], "dataset_dir": ".",
                                      "finetuning_type": "lora", "max_steps": 1}), encoding="utf-8")
    assert main(["train", str(recipe), "--run-name", "cols-named"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "dataset_info.json's \"columns\" of 'my_qa' (\"response\": \"answr\") maps 'response (ftwiz's " \
           "'output')' to the column 'answr'" in err, err
    assert "--column" not in err and "qa.yaml" not in err
