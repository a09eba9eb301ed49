"""A reject's field is a path into the record as the file holds it, so a user finds the value to fix.

Oracle: the reported path is followed in the raw JSON record (``conversations[1].value``, ``messages[2]``,
``output``) and must reach the offending value. Before: conversation checks named ftwiz's own normalised
messages (``messages[2].content`` in a ShareGPT file, which has no ``messages``), one index off when the
record had a ``system`` column.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ftwiz.core.data import check_dataset

CASES = [  # (record, what the path must reach)
    ({"system": "Be kind.", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "  "},
                                              {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Bye"}]},
     "  "),
    ({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                        {"from": "system", "value": "Late rule."}, {"from": "human", "value": "Bye"},
                        {"from": "gpt", "value": "Bye"}]},
     {"from": "system", "value": "Late rule."}),
    ({"system": "Be kind.", "messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"},
                                         {"role": "assistant", "content": "Hello"}]},
     {"role": "user", "content": "Again"}),
    ({"system": "Be kind.", "messages": [{"role": "user", "content": "Hi"},
                                         {"role": "assistant", "content": "Hello", "weight": 0}]},
     0),
    ({"instruction": "Hi", "output": "Hello", "history": [["Q", "A"]], "system": "S",
      "conversations_note": "alpaca with history"},
     None),  # a good record: nothing to reach
]


def _follow(record: Any, path: str) -> Any:
    """``conversations[1].value`` -> record["conversations"][1]["value"] (KeyError/IndexError when absent)."""
    value = record
    for name, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", path):
        value = value[name] if name else value[int(index)]
    return value


@pytest.mark.parametrize("record, reached", CASES)
def test_the_reject_field_leads_to_the_value_in_the_file(tmp_path: Path, record: dict, reached: Any) -> None:
    path = tmp_path / "data.jsonl"
    good = {"instruction": "Say hi", "output": "Hi"} if "instruction" in record else (
        {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]} if "messages" in record
        else {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]})
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    report = check_dataset(str(path))
    if reached is None:
        assert report.rejects == []
        return
    [reject] = report.rejects
    assert reject.line == 2
    assert _follow(record, reject.field) == reached, reject.field
    assert "messages[" not in reject.message or "messages" in record  # no name the file does not have
