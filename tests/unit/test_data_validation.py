"""Each class of bad input: reported with file, line and reason; the good records around it are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.data import check_dataset
from ftwiz.core.errors import FtwizError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"

# fixture file -> (reason, field or None, format when it must be forced)
BAD_INPUT = {
    "invalid_json.jsonl": ("invalid_json", None, "auto"),
    "invalid_utf8.jsonl": ("invalid_utf8", None, "auto"),
    "duplicate_key.jsonl": ("duplicate_key", None, "auto"),
    "missing_field.jsonl": ("missing_field", "output", "alpaca"),
    "empty_field.jsonl": ("empty_field", "instruction", "auto"),
    "non_string.jsonl": ("non_string_content", "output", "auto"),
    "empty_assistant.jsonl": ("empty_assistant_turn", "messages[1].content", "auto"),
    "roles_out_of_order.jsonl": ("roles_out_of_order", "messages[1]", "auto"),
    "system_not_first.jsonl": ("roles_out_of_order", "messages[1]", "auto"),
    "unknown_role.jsonl": ("unknown_role", "conversations[1].from", "auto"),
    "not_an_object.jsonl": ("not_an_object", None, "auto"),
    "no_assistant_answer.jsonl": ("no_assistant_answer", "messages[0]", "auto"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_record_is_rejected_with_its_location_and_the_rest_kept(name: str) -> None:
    reason, field, fmt = BAD_INPUT[name]
    report = check_dataset(str(FIXTURES / name), formatting=fmt)
    assert report.read in (2, 3) and report.kept == 2, (report.rejected, report.kept)
    assert len(report.rejects) == 1
    reject = report.rejects[0]
    assert reject.reason == reason
    assert reject.file.endswith(name) and reject.line == 2
    if field:
        assert reject.field == field


def test_csv_with_column_mapping_and_a_row_with_extra_cells() -> None:
    report = check_dataset(str(FIXTURES / "bad_csv_row.csv"), formatting="alpaca",
                           columns={"instruction": "question", "output": "answer"})
    assert report.kept == 2 and report.rejects[0].reason == "bad_csv_row" and report.rejects[0].line == 3
    assert report.samples[0]["messages"][0]["content"] == "What is 1+1?"


def test_check_cli_writes_rejects_and_never_touches_the_input(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "mine.jsonl"
    source.write_bytes((FIXTURES / "invalid_json.jsonl").read_bytes())
    before = source.read_bytes()
    assert cli_main(["data", "check", str(source)]) == 0
    out = capsys.readouterr().out
    assert "line 2" in out and "invalid JSON" in out
    rejects = [json.loads(line) for line in (tmp_path / "mine.rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["line"] == 2 and rejects[0]["reason"] == "invalid_json" and rejects[0]["raw"]
    assert source.read_bytes() == before


def test_nothing_usable_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "all_bad.jsonl"
    path.write_text('{"instruction": "x"}\n{"broken\n', encoding="utf-8")
    assert cli_main(["data", "check", str(path), "--format", "alpaca"]) == 1


def test_unsupported_file_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(FtwizError, match="unsupported dataset file type"):
        check_dataset(str(tmp_path / "data.xlsx"))
    with pytest.raises(FtwizError, match="not found"):
        check_dataset(str(tmp_path / "nope.jsonl"))


def test_unknown_format_says_how_to_choose_one(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"q": "a", "a": "b"}\n', encoding="utf-8")
    with pytest.raises(FtwizError) as info:
        check_dataset(str(path))
    assert "--format" in str(info.value) and "odd.jsonl" in str(info.value)
