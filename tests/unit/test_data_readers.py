"""Readers keep every byte (issue 16, item 4) and ``data check`` counts add up (issue 17, item 8)."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.data import check_dataset
from ftwiz.core.errors import FtwizError

COLOURS = "1. red\n2. yellow\n3. green"


# --- CSV / TSV --------------------------------------------------------------------------------------------


def test_csv_quoted_cell_keeps_its_line_breaks(tmp_path: Path) -> None:
    """The issue's case: the list used to arrive as '1. red2. yellow3. green' (and the model stopped listing)."""
    path = tmp_path / "lists.csv"
    path.write_text('instruction,output\n"List three colours.","1. red\n2. yellow\n3. green"\n'
                    'Say hi.,Hi!\n', encoding="utf-8", newline="")
    report = check_dataset(str(path))
    assert (report.read, report.kept, len(report.rejects)) == (2, 2, 0)
    assert report.samples[0]["messages"][1]["content"] == COLOURS
    assert report.samples[1]["messages"][0]["content"] == "Say hi."


def test_csv_bom_crlf_doubled_quotes_and_line_numbers_of_multiline_records(tmp_path: Path) -> None:
    rows = ['instruction,output', '"Quote me","She said ""no""."', '"List three colours.","1. red\r\n2. yellow\r\n3. green"',
            'Too,many,cells', 'Last,"one"']
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + "\r\n".join(rows).encode("utf-8") + b"\r\n")
    report = check_dataset(str(path))
    assert report.formats[str(path)][0] == "alpaca"  # the BOM did not become part of the first column's name
    assert report.samples[0]["messages"][1]["content"] == 'She said "no".'
    assert report.samples[1]["messages"][1]["content"] == "1. red\r\n2. yellow\r\n3. green"  # every byte
    # the record after the 3-line cell starts on line 6 (not 4)
    assert [(r.reason, r.line) for r in report.rejects] == [("bad_csv_row", 6)]
    assert (report.read, report.kept) == (4, 3)


def test_tsv_keeps_quoted_tabs_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text('instruction\toutput\nSplit this.\t"a\tb\nc"\n', encoding="utf-8", newline="")
    report = check_dataset(str(path))
    assert report.samples[0]["messages"][1]["content"] == "a\tb\nc"


def test_csv_unclosed_quote_is_an_error_naming_the_line_not_a_swallowed_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('instruction,output\nA,B\n"C,D\nE,F\nG,H\n', encoding="utf-8", newline="")
    with pytest.raises(FtwizError) as info:
        check_dataset(str(path))
    assert info.value.where.line == 3 and "broken.csv" in str(info.value) and "quote" in info.value.fix


def test_csv_not_utf8_keeps_the_clear_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("instruction,output\nCafé?,Oui\n".encode("latin-1"))
    with pytest.raises(FtwizError, match="not valid UTF-8 at byte 22") as info:
        check_dataset(str(path))
    assert info.value.where.line == 2 and "UTF-8" in info.value.fix


def test_utf16_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notepad.jsonl"
    path.write_bytes('{"instruction": "a", "output": "b"}\n'.encode("utf-16"))
    with pytest.raises(FtwizError, match="UTF-16"):
        check_dataset(str(path))


# --- JSON / JSONL encoding rules --------------------------------------------------------------------------


def test_json_and_jsonl_with_bom_and_crlf_read_as_written(tmp_path: Path) -> None:
    record = {"instruction": "List three colours.", "output": COLOURS + "\u2028"}
    jsonl = tmp_path / "win.jsonl"
    jsonl.write_bytes(codecs.BOM_UTF8 + (json.dumps(record, ensure_ascii=False) + "\r\n").encode("utf-8") * 2)
    as_json = tmp_path / "win.json"
    as_json.write_bytes(codecs.BOM_UTF8 + json.dumps([record], ensure_ascii=False).encode("utf-8"))
    for path, lines in ((jsonl, [1, 2]), (as_json, [None])):
        report = check_dataset(str(path))
        assert not report.rejects, report.rejects
        assert [c["messages"][1]["content"] for c in report.samples] == [record["output"]] * len(lines)


def test_rejected_record_of_a_json_array_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json"
    records = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}, {"instruction": "e", "output": "f"}]
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")  # each record spans 4 lines
    report = check_dataset(str(path))
    assert report.kept == 2 and [(r.line, r.index, r.field) for r in report.rejects] == [(6, 1, "output")]


def test_json_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"instruction": "a", "output": "b"},\n {"instruction": "Café", "output": "c"}]'.encode("latin-1"))
    with pytest.raises(FtwizError, match="not valid UTF-8") as info:
        check_dataset(str(path))
    assert info.value.where.line == 2


def test_parquet_tool_records_carry_no_null_keys_from_arrows_struct_union(tmp_path: Path) -> None:
    """Arrow gives every message every key (tool_calls=None on user turns...): none may reach the template."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}
    rows = [{"messages": [{"role": "user", "content": "Add 2 and 3"},
                          {"role": "assistant", "content": None, "tool_calls": [call]},
                          {"role": "tool", "content": "5", "tool_call_id": "call_1"},
                          {"role": "assistant", "content": "5"}]}]
    path = tmp_path / "tools.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    messages = check_dataset(str(path)).samples[0]["messages"]
    assert messages == [
        {"role": "user", "content": "Add 2 and 3"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
        {"role": "tool", "content": "5", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "5"}]


# --- data check on a file with one broken line (issue 17, item 8) -----------------------------------------


def _data_flags() -> set[str]:
    import argparse

    from ftwiz.core.cli import data as data_cli

    parser = argparse.ArgumentParser()
    data_cli.add_arguments(parser)
    return {flag for action in parser._actions for flag in action.option_strings}


def test_check_with_one_broken_json_line_detects_the_format_names_the_line_and_counts_add_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"instruction": "Name a fruit.", "output": "Apple."}\n'
                    '{"instruction": "Name a colour.", "output": "Red."\n'  # the closing brace is missing
                    '{"instruction": "Name a city.", "input": "", "output": "Oslo."}\n'
                    '{"instruction": "Name a tree.", "output": "Oak."}\n', encoding="utf-8")
    assert cli_main(["data", "check", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long paths
    assert "alpaca" in out and "cannot tell the format" not in out
    assert "mine.jsonl, line 2: invalid JSON: Expecting ',' delimiter at column 51" in out  # the line's end
    assert re.search(r"records read 4, kept 3, rejected 1\b", out), out

    assert cli_main(["data", "check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["read"] == report["kept"] + sum(report["rejected"].values()) == 4
    assert [(p["line"], p["reason"]) for p in report["problems"]] == [(2, "invalid_json")]


def test_one_odd_record_does_not_decide_the_format(tmp_path: Path) -> None:
    """The old detector intersected the first records' keys: one stray record gave 'the keys []'."""
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"question": "c", "answer": "d"}\n'
                    '{"instruction": "e", "output": "f"}\n', encoding="utf-8")
    report = check_dataset(str(path))
    assert report.formats[str(path)][0] == "alpaca" and report.kept == 2
    assert (report.rejects[0].line, report.rejects[0].reason, report.rejects[0].field) == (2, "missing_field",
                                                                                            "instruction")
    assert report.read == report.kept + len(report.rejects) == 3
    assert "['answer', 'question']" in report.rejects[0].message
    assert "--column instruction=" in report.rejects[0].message and "--column" in _data_flags()


def test_unknown_format_fix_names_flags_that_exist(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"q": "a", "a": "b"}\n{"broken\n', encoding="utf-8")
    with pytest.raises(FtwizError) as info:
        check_dataset(str(path))
    assert "['a', 'q']" in info.value.what
    named = set(re.findall(r"--[a-z][a-z-]*", info.value.fix))
    assert {"--format", "--column"} <= named and named <= _data_flags()


def test_every_line_broken_reports_them_all_without_guessing_a_format(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": \n{"b": \n', encoding="utf-8")
    assert cli_main(["data", "check", str(path)]) == 1
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long paths
    assert re.search(r"records read 2, kept 0, rejected 2\b", out) and "line 1" in out and "line 2" in out


def test_records_wrapped_in_an_object_are_said_to_be_under_their_key_with_a_fix_that_works(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`{"data": [...]}` (how many exports save a list) said 'cannot tell the format from the keys ['data']' and
    offered --format and --column, which cannot read it; the suggested command must give a file ftwiz reads."""
    import shutil
    import subprocess
    import sys

    rows = [{"instruction": f"Name fruit {i}.", "output": f"Fruit {i}."} for i in range(3)]
    folder = tmp_path / "my data"
    folder.mkdir()
    wrapped = folder / "Bob's export.json"  # a space and a quote in the path: the command must still work
    wrapped.write_text(json.dumps({"version": 2, "data": rows}), encoding="utf-8")
    assert cli_main(["data", "check", str(wrapped)]) == 2
    err = capsys.readouterr().err
    said = " ".join(err.split())
    assert "field 'data'" in said and "records (3) are under the key 'data'" in said and "--format" not in said
    command = err.replace("\n", "").split("`", 2)[1]  # the console may wrap the fix over lines
    assert command.startswith("python -c ")
    monkeypatch.chdir(tmp_path.parent)  # run from another folder, as a user may
    python = Path(sys.executable).parent
    subprocess.run(["bash", "-c", command], check=True, env={"PATH": f"{python}:/usr/bin:/bin"})
    assert shutil.which("python", path=str(python))
    assert cli_main(["data", "check", str(folder / "Bob's export-records.json")]) == 0
    assert "kept 3" in " ".join(capsys.readouterr().out.split())
