"""A misspelled role on the LEFT side of a column mapping (`--column instrution=question`, a recipe's
`columns: {instrution: question}`) renamed the user's column to a name nothing reads: the records then failed
with "cannot tell the format from the keys ['instrution', ...]". It is refused as the mapping is read, naming
the flag or the recipe file, line and key, the closest role, and the valid roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_cli import one_line


def _qa(path: Path) -> Path:
    rows = [{"question": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_misspelled_role_in_the_flag_is_refused_with_the_closest_role_and_the_roles(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    data = _qa(tmp_path / "qa.jsonl")
    assert main(["data", "check", str(data), "--column", "instrution=question", "--column", "output=answer"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: --column instrution=question: 'instrution' (mapped to your column 'question') is "
                          "not a role ftwiz reads (did you mean 'instruction'?); the left side names the role, the "
                          "right side your column; the roles are instruction, input, output, system, history, ")
    assert "or LLaMA-Factory's prompt, query, response, messages, images" in err
    assert err.endswith("fix: e.g. --column instruction=question (in a recipe: columns: {instruction: question})")
    assert "cannot tell the format" not in err  # the later, vaguer error is not what the user gets
    assert not (tmp_path / "qa.rejects.jsonl").exists()
    # the two sides swapped: the mapping turned round is offered
    assert main(["data", "stats", str(data), "--column", "question=instruction"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "the two sides look swapped: the role comes first, 'instruction=question'" in err
    # the right mapping, and LLaMA-Factory's names for the roles, are taken
    assert main(["data", "check", str(data), "--column", "instruction=question", "--column", "output=answer"]) == 0
    assert main(["data", "check", str(data), "--column", "prompt=question", "--column", "response=answer"]) == 0


def test_a_misspelled_role_in_a_recipe_is_refused_by_validate_and_train_naming_file_line_and_key(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    data = _qa(tmp_path / "qa.jsonl")
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(f"model_name_or_path: demo\ndataset: [{data}]\ncolumns: {{instrution: question, "
                      "output: answer}\n", encoding="utf-8")
    for argv in (["recipe", "validate", str(recipe)], ["train", str(recipe), "--run-name", "role-typo"]):
        assert main(argv) == 2
        err = one_line(capsys.readouterr().err)
        assert err.startswith(f"error: {recipe}, line 3: invalid recipe: - line 3, 'columns': 'instrution' (mapped "
                              "to your column 'question') is not a role ftwiz reads (did you mean 'instruction'?)")
        assert "the roles are instruction, input, output" in err
    assert not (ftwiz_env["runs"] / "role-typo").exists()


def test_the_role_names_are_the_fields_the_format_readers_take() -> None:
    """The role list lives outside ftwiz.core.data (the recipe schema reads it); it must name every LLaMA-Factory
    column the readers rename or refuse, and every field those renames lead to."""
    from ftwiz.core.column_roles import LF_ROLES, OUR_ROLES
    from ftwiz.core.data.formats import LF_COLUMNS, MEDIA_COLUMNS

    assert set(LF_ROLES) == set(LF_COLUMNS) | set(MEDIA_COLUMNS)
    assert set(LF_COLUMNS.values()) <= set(OUR_ROLES)
