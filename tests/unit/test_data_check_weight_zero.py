"""`ftwiz data check` rejects an OpenAI record whose every assistant message has "weight": 0, as train does.

check said 'kept 2, rejected 0 ... nothing was dropped silently'; prepare and train then left the record out
('no token of the answer is left to learn').
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main


def test_check_rejects_a_record_with_nothing_to_learn_naming_line_and_field(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "w.jsonl"
    data.write_text("".join(json.dumps({"messages": m}) + "\n" for m in (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "learned"}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "context", "weight": 0},
         {"role": "user", "content": "again"}, {"role": "assistant", "content": "also context", "weight": 0}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "context", "weight": 0},
         {"role": "user", "content": "again"}, {"role": "assistant", "content": "learned"}])), encoding="utf-8")
    cli_main(["data", "check", str(data)])
    out = " ".join(capsys.readouterr().out.split())
    assert "records read 3, kept 2, rejected 1" in out
    assert "line 2, field 'messages[3].weight'" in out and "weight" in out
