"""TRL's conversational preference datasets are read as the pairs they are (TRL trains ftwiz's DPO/KTO/ORPO).

TRL documents three shapes besides prompt/chosen/rejected strings: an explicit prompt as a list of messages,
an implicit prompt (``chosen`` and ``rejected`` are whole conversations sharing every turn but the last), and
HuggingFaceH4/ultrafeedback_binarized's, which also has ``messages`` (the chosen conversation). Every record
of each was rejected ("'instruction' is missing ... map it with --column instruction=YOUR_COLUMN", or "a
preference prompt must end with a user turn"), so such a file gave "no usable records".

Oracle: the input records themselves (prompt turns, chosen and rejected answers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import check_dataset

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "What colour is the sky?"}
GOOD = {"role": "assistant", "content": "Blue."}
BAD = {"role": "assistant", "content": "Green."}
SHAPES = {
    "explicit": {"prompt": [SYSTEM, USER], "chosen": [GOOD], "rejected": [BAD]},
    "implicit": {"chosen": [SYSTEM, USER, GOOD], "rejected": [SYSTEM, USER, BAD]},
    "ultrafeedback": {"prompt": USER["content"], "chosen": [USER, GOOD], "rejected": [USER, BAD],
                      "messages": [USER, GOOD], "score_chosen": 8.0, "score_rejected": 3.0},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_trl_preference_shapes_become_their_pairs(tmp_path: Path, shape: str) -> None:
    record = SHAPES[shape]
    path = tmp_path / f"{shape}.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    report = check_dataset(str(path))
    assert (report.kept, report.rejects) == (1, []), [r.to_json() for r in report.rejects]
    prompt = [SYSTEM, USER] if shape != "ultrafeedback" else [USER]
    sample = report.samples[0]
    assert sample["messages"] == prompt
    assert (sample["chosen"], sample["rejected"]) == ("Blue.", "Green.")


def test_implicit_prompts_that_differ_are_rejected_by_line(tmp_path: Path) -> None:
    record = {"chosen": [USER, GOOD], "rejected": [{"role": "user", "content": "Another question"}, BAD]}
    path = tmp_path / "mismatch.jsonl"
    path.write_text(json.dumps(SHAPES["implicit"]) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    report = check_dataset(str(path))
    assert report.kept == 1 and [(r.line, r.field) for r in report.rejects] == [(2, "rejected")]
