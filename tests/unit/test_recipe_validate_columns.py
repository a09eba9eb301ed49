"""`ftwiz recipe validate` read no data, so a recipe whose `columns:` name a column its dataset does not have
passed ("ok ...") and failed only when `ftwiz train` read the records. Validate now reads the first records with
the loader's reader and refuses such a mapping naming the recipe file, the key, the dataset file and the columns
the data has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_cli import one_line


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _recipe(path: Path, data: Path, columns: str) -> Path:
    path.write_text(f"model_name_or_path: demo\ndataset: [{data}]\ncolumns: {columns}\n", encoding="utf-8")
    return path


def test_validate_refuses_a_mapped_column_the_data_lacks_naming_recipe_key_and_data_file(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    data = _write(tmp_path / "qa.jsonl", [{"question": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(5)])
    recipe = _recipe(tmp_path / "qa.yaml", data, "{instruction: questoin, output: answer}")
    assert main(["recipe", "validate", str(recipe)]) == 2
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    assert one_line(captured.err) == (
        f"error: {data}, field 'columns.instruction': {recipe}'s columns: {{instruction: questoin}} maps "
        "'instruction' to the column 'questoin', which no record of qa.jsonl has; its records have the columns "
        f"answer, question fix: name one of those columns (e.g. columns: {{instruction: question}} in {recipe}), "
        "or drop the mapping")
    # LLaMA-Factory's name for the role is named as written, with ours beside it
    _recipe(recipe, data, "{prompt: question, response: answr}")
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert ("'s columns: {response: answr} maps 'response (ftwiz's 'output')' to the column 'answr'"
            in one_line(capsys.readouterr().err))
    # the mapping the data has passes
    _recipe(recipe, data, "{instruction: question, output: answer}")
    assert main(["recipe", "validate", str(recipe)]) == 0
    assert "ok" in capsys.readouterr().out


def test_a_column_first_seen_after_the_first_records_is_not_refused(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Only the first records are read when they hold every mapped column; one seen later in the file (as training
    reads it all, and takes it) is looked for in the rest before the file is refused."""
    from ftwiz.core.cli import main
    from ftwiz.core.data.column_map import FIRST_RECORDS

    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(FIRST_RECORDS + 5)]
    rows[-1]["persona"] = "You are Ann."
    data = _write(tmp_path / "late.jsonl", rows)
    recipe = _recipe(tmp_path / "late.yaml", data, "{system: persona}")
    assert main(["recipe", "validate", str(recipe)]) == 0
    _recipe(recipe, data, "{system: personna}")
    assert main(["recipe", "validate", str(recipe)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "the column 'personna', which no record of late.jsonl has; its records have the columns instruction, " \
           "output, persona" in err


def test_a_missing_dataset_is_still_reported_before_its_columns(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    recipe = _recipe(tmp_path / "gone.yaml", tmp_path / "nothere.jsonl", "{instruction: question}")
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert one_line(capsys.readouterr().err).startswith(
        f"error: {recipe}, field 'dataset[0]': dataset not found: {tmp_path / 'nothere.jsonl'}")


def test_a_dataset_info_entrys_own_columns_are_checked_and_named(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    _write(tmp_path / "qa.jsonl", [{"q": "2+2?", "a": "4"}])
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"my_qa": {"file_name": "qa.jsonl", "columns": {"prompt": "q", "response": "answer"}}}), encoding="utf-8")
    recipe = tmp_path / "info.yaml"
    recipe.write_text(f"model_name_or_path: demo\ndataset: [my_qa]\ndataset_dir: {tmp_path}\n", encoding="utf-8")
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert one_line(capsys.readouterr().err).startswith(
        f"error: {tmp_path / 'qa.jsonl'}, field 'columns.response': dataset_info.json's \"columns\" of 'my_qa' "
        "(\"response\": \"answer\") maps 'response (ftwiz's 'output')' to the column 'answer'")


def test_a_mapping_that_fits_one_of_two_files_says_columns_applies_to_both(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The fix named a column of the second file, which would break the first: one `columns:` reaches every file
    of the recipe, and a dataset_info.json entry is where a file gets its own."""
    from ftwiz.core.cli import main

    first = _write(tmp_path / "qa.jsonl", [{"question": "2+2?", "answer": "4"}])
    second = _write(tmp_path / "other.jsonl", [{"q": "3+3?", "a": "6"}])
    recipe = tmp_path / "two.yaml"
    recipe.write_text(f"model_name_or_path: demo\ndataset: [{first}, {second}]\n"
                      "columns: {instruction: question, output: answer}\n", encoding="utf-8")
    assert main(["recipe", "validate", str(recipe)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"error: {second}, field 'columns.instruction'" in err, err
    assert err.endswith("or drop the mapping; columns: applies to all 2 dataset files of the recipe: where their "
                        "columns differ, give each file a dataset_info.json entry with its own \"columns\" and list "
                        "the entries under dataset:"), err

    recipe.write_text(f"model_name_or_path: demo\ndataset: [{second}]\ncolumns: {{instruction: question}}\n",
                      encoding="utf-8")
    assert main(["recipe", "validate", str(recipe)]) == 2
    assert "applies to all" not in capsys.readouterr().err  # one file: nothing else to break


def test_the_fix_does_not_suggest_a_column_another_field_already_reads(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The fix suggested 'columns: {instruction: a}' when 'a' was the output's column: following it reads one
    column as both the question and the answer. The column left over is the one to name."""
    from ftwiz.core.cli import main

    data = _write(tmp_path / "qa.jsonl", [{"question": "2+2?", "a": "4"}])
    recipe = _recipe(tmp_path / "r.yaml", data, "{instruction: q, output: a}")
    assert main(["recipe", "validate", str(recipe)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "(e.g. columns: {instruction: question} in " in err, err
