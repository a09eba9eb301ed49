"""Column mappings that point at nothing: `--column instruction=nosuch` on records that already have an
`instruction` was silently ignored (the record's own field was trained), as was a mapped column missing from
some records. LLaMA-Factory reads ``example[column]``: a column in no record stops it, a column missing from a
record is None there; ftwiz refuses the first by name and treats the second as absent in that record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_cli import one_line


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_mapping_to_a_column_no_record_has_is_refused_naming_flag_file_and_columns(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    data = _write(tmp_path / "qa.jsonl", [{"instruction": "Say hi", "output": "hi", "question": "Q1"},
                                          {"instruction": "Say bye", "output": "bye", "question": "Q2"}])
    assert main(["data", "check", str(data), "--column", "instruction=nosuch"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err == (f"error: {data}, field 'columns.instruction': --column instruction=nosuch (in a recipe: columns: "
                   "{instruction: nosuch}) maps 'instruction' to the column 'nosuch', which no record of qa.jsonl has; "
                   "its records have the columns instruction, output, question fix: name one of those columns "
                   "(e.g. --column instruction=instruction), or drop the mapping")
    assert not (tmp_path / "qa.rejects.jsonl").exists()
    # LLaMA-Factory's name for the column, mistyped: the closest existing column is offered
    assert main(["data", "preview", str(data), "--column", "prompt=questoin"]) == 2
    assert "e.g. --column prompt=question" in one_line(capsys.readouterr().err)
    # the same mapping in a recipe stops `ftwiz train` before a run folder is made
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: demo\ndataset: [{data}]\ncolumns: {{instruction: nosuch}}\n",
                      encoding="utf-8")
    assert main(["train", str(recipe), "--run-name", "cols-nosuch"]) == 2
    assert "maps 'instruction' to the column 'nosuch', which no record of qa.jsonl has" in one_line(
        capsys.readouterr().err)
    assert not (ftwiz_env["runs"] / "cols-nosuch").exists()


def test_a_mapped_column_missing_from_some_records_is_absent_there(tmp_path: Path) -> None:
    from ftwiz.core.data import check_dataset
    from ftwiz.core.data.sources import load_sources, specs_from_dataset_info

    data = _write(tmp_path / "qa.jsonl", [{"instruction": "unused", "output": "4", "question": "2+2?"},
                                          {"instruction": "Say bye", "output": "bye"}])
    report = check_dataset(str(data), columns={"instruction": "question"})
    assert (report.kept, report.rejected) == (1, {"missing_field": 1})  # 'Say bye' was trained as the question
    reject = report.rejects[0]
    assert (reject.line, reject.field) == (2, "question")
    assert reject.message.startswith("the column 'question' is missing from this record, and --column "
                                     "instruction=question")
    # an optional column (the system prompt) missing from a record: no system there, not the record's 'system'
    data = _write(tmp_path / "sys.jsonl", [{"instruction": "a", "output": "b", "persona": "You are Ann."},
                                           {"instruction": "c", "output": "d", "system": "not this one"}])
    loaded = load_sources(specs_from_dataset_info([str(data)], None, "auto", {"system": "persona"}))
    systems = [[m["content"] for m in c.messages if m["role"] == "system"] for c in loaded.conversations]
    assert systems == [["You are Ann."], []]


def test_a_dataset_info_mapping_to_a_missing_column_names_the_entry(tmp_path: Path) -> None:
    from ftwiz.core.data import check_dataset
    from ftwiz.core.errors import FtwizError

    _write(tmp_path / "qa.jsonl", [{"q": "2+2?", "a": "4"}])
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"my_qa": {"file_name": "qa.jsonl", "columns": {"prompt": "q", "response": "answer"}}}), encoding="utf-8")
    with pytest.raises(FtwizError) as caught:
        check_dataset("my_qa", dataset_dir=str(tmp_path))
    assert one_line(caught.value.render()).startswith(
        f"{tmp_path / 'qa.jsonl'}, field 'columns.response': dataset_info.json's \"columns\" of 'my_qa' "
        "(\"response\": \"answer\") maps 'response (ftwiz's 'output')' to the column 'answer', which no record of "
        "qa.jsonl has; its records have the columns a, q")


def test_rejects_keep_the_record_as_the_file_holds_it_and_fixes_are_written_where_the_mapping_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A record rejected under a mapping went to the rejects file renamed ({"output": ...} for a file whose column is
    "answer"); a fix for a dataset_info.json mapping offered a --column flag, which a named entry never reads; a
    column name with a space was offered unquoted. Oracle: the input file's own lines and columns."""
    from ftwiz.core.cli import main

    data = _write(tmp_path / "qa.jsonl", [{"question": "2+2?", "answer": "4"},
                                          {"question": "sky?", "answer": "blue", "ctx": "day"}])
    assert main(["data", "check", str(data), "--column", "instruction=ctx", "--column", "output=answer"]) == 0
    rejects = [json.loads(line) for line in (tmp_path / "qa.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    first = json.loads(data.read_text(encoding="utf-8").splitlines()[0])
    assert [(r["line"], r["raw"]) for r in rejects] == [(1, first)]
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"my_qa": {"file_name": "qa.jsonl", "columns": {"prompt": "questoin", "response": "answer"}}}), encoding="utf-8")
    assert main(["data", "check", "my_qa", "--dataset-dir", str(tmp_path)]) == 2
    assert "fix: name one of those columns (e.g. \"prompt\": \"question\" in dataset_info.json's \"columns\" of " \
           "'my_qa'), or drop the mapping" in one_line(capsys.readouterr().err)
    spaced = _write(tmp_path / "spaced.jsonl", [{"my question": "2+2?", "answer": "4"}])
    assert main(["data", "check", str(spaced), "--column", "instruction=my  question"]) == 2
    assert "(e.g. --column 'instruction=my question')" in one_line(capsys.readouterr().err)


def test_sharegpt_turns_with_other_key_or_role_names_point_at_dataset_info_tags(tmp_path: Path) -> None:
    """`--column conversations=talk` on turns of speaker/text said "conversations[0].from is None": nothing the user
    wrote. Now the turn's own keys are named with LLaMA-Factory's way to map them (dataset_info.json "tags"), which
    then reads the file. Oracle: the file's turns, and the same file read through the tags."""
    from ftwiz.core.data import check_dataset

    data = _write(tmp_path / "talk.jsonl", [{"talk": [{"speaker": "me", "text": "hi"}, {"speaker": "bot", "text": "yo"}]}])
    report = check_dataset(str(data), columns={"conversations": "talk"})
    assert report.kept == 0 and report.rejects[0].field == "conversations[0].from"
    assert report.rejects[0].message.startswith("conversations[0] has no 'from' (its keys: speaker, text)")
    assert '"tags"' in report.rejects[0].message
    named = _write(tmp_path / "named.jsonl", [{"conversations": [{"from": "me", "value": "hi"},
                                                                 {"from": "bot", "value": "yo"}]}])
    assert '"user_tag": "me"' in check_dataset(str(named)).rejects[0].message
    (tmp_path / "dataset_info.json").write_text(json.dumps({"talk": {
        "file_name": "talk.jsonl", "formatting": "sharegpt", "columns": {"messages": "talk"},
        "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"}}}))
    kept = check_dataset("talk", dataset_dir=str(tmp_path))
    assert kept.kept == 1 and [m["content"] for m in kept.samples[0]["messages"]] == ["hi", "yo"]


def test_a_recipes_columns_reach_its_files_after_a_dataset_info_entry_and_entries_without_columns(
        tmp_path: Path) -> None:
    """`dataset: [my_qa, other.jsonl]` with `columns: {instruction: question, output: answer}`: other.jsonl was read
    with my_qa's "columns" (a refusal naming a `--column prompt=q` nobody wrote, or a silent wrong mapping), and an
    entry without "columns" ignored the recipe's and rejected every record with 'map it with --column'. Oracle: the
    input files' own texts."""
    from ftwiz.core.data.sources import load_sources, specs_from_dataset_info

    _write(tmp_path / "qa.jsonl", [{"q": "2+2?", "a": "4"}])
    _write(tmp_path / "other.jsonl", [{"question": "sky?", "answer": "blue"}])
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "my_qa": {"file_name": "qa.jsonl", "columns": {"prompt": "q", "response": "a"}},
        "plain": {"file_name": "other.jsonl"}}), encoding="utf-8")
    ours = {"instruction": "question", "output": "answer"}
    for names in (["my_qa", "other.jsonl"], ["my_qa", "plain"]):
        loaded = load_sources(specs_from_dataset_info(names, str(tmp_path), "auto", ours))
        assert not loaded.rejects, [r.message for r in loaded.rejects]
        assert [[m["content"] for m in c.messages] for c in loaded.conversations] == [["2+2?", "4"], ["sky?", "blue"]]


def test_a_semicolon_separated_csv_is_named_as_such_not_offered_its_whole_header_as_a_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A spreadsheet's ';'-separated export: the fix offered `--column 'instruction=question;answer'`. Oracle: Python's
    csv module reads the header as one column, as any comma CSV reader does."""
    import csv

    from ftwiz.core.cli import main

    data = tmp_path / "sheet.csv"
    data.write_text("question;answer\n2+2?;4\n", encoding="utf-8")
    with data.open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["question;answer"]
    assert main(["data", "check", str(data), "--column", "instruction=question", "--column", "output=answer"]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{data}, line 1:" in err and "header 'question;answer' is one column" in err, err
    assert "fix: save it as comma-separated CSV" in err and "instruction=question;answer" not in err, err


def test_a_flag_mapping_over_a_folder_says_it_reaches_every_file(
        tmp_path: Path, ftwiz_env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`ftwiz data check FOLDER --column ...` whose mapping fits one file and not the other suggested renaming it
    to the other file's column, which would break the first, without a word that the flags reach both."""
    from ftwiz.core.cli import main

    folder = tmp_path / "parts"
    folder.mkdir()
    _write(folder / "a.jsonl", [{"q": "2+2?", "answer": "4"}])
    _write(folder / "b.jsonl", [{"question": "3+3?", "answer": "6"}])
    for given in (str(folder), str(folder / "*.jsonl")):
        assert main(["data", "check", given, "--format", "alpaca", "--column", "instruction=q",
                     "--column", "output=answer"]) == 2
        err = one_line(capsys.readouterr().err)
        assert f"error: {folder / 'b.jsonl'}, field 'columns.instruction'" in err, err
        assert "--column applies to all 2 dataset files given" in err, err
        assert "dataset_info.json entry" in err
    # one file: nothing else to break
    assert main(["data", "check", str(folder / "b.jsonl"), "--column", "instruction=q"]) == 2
    assert "applies to all" not in capsys.readouterr().err
