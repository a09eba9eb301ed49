"""The held-out splits are held to ``cutoff_len`` as training is: eval scores only what training could see.

Oracle: the input file (which records are longer than ``cutoff_len``, counted with transformers'
``apply_chat_template``), never ftwiz's own rendering.
- ``overlength: drop`` left records longer than ``cutoff_len`` in ``test.jsonl`` (only train and validation
  were tokenized), so ``ftwiz eval`` scored them cut at ``cutoff_len``: a record training would never see.
- The user was not told how many held-out records were left out, or why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import prepare_for_training
from ftwiz.core.events import EventBus, Message
from ftwiz.core.recipe import parse_recipe

CUTOFF = 64
N = 60


@pytest.fixture(scope="module")
def tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def _length(tok, row: dict) -> int:
    """Tokens of the record as the model's own template renders it (the oracle)."""
    messages = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]
    return len(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def _rows() -> list[dict]:
    long = "a very long answer about many things and more " * 12
    return [{"instruction": f"question number {i}", "input": "", "output": (long if i % 3 == 0 else "short") + f" {i}"}
            for i in range(N)]


def _prepare(tok, tmp_path: Path, **recipe):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(_rows()), encoding="utf-8")
    seen: list[Message] = []
    bus = EventBus([lambda e: seen.append(e) if isinstance(e, Message) else None])
    data = {"model_name_or_path": "x", "dataset": [str(path)], "cutoff_len": CUTOFF, "val_size": 0.2,
            "test_size": 0.2, "dedup": False, **recipe}
    prepared = prepare_for_training(parse_recipe(data), tok, events=bus)
    out = prepared.save_splits(tmp_path / "prepared")
    splits = {name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
              for name in ("train", "validation", "test")}
    return prepared, splits, [m.text for m in seen if m.level == "warning"]


def _answers(records: list[dict]) -> set[str]:
    return {m["content"] for r in records for m in r["messages"] if m["role"] == "assistant"}


def test_held_out_records_longer_than_cutoff_are_left_out_and_said(tok, tmp_path: Path) -> None:
    rows = _rows()
    too_long = {r["output"] for r in rows if _length(tok, r) > CUTOFF}
    assert len(too_long) == N // 3  # the oracle: every third record is over cutoff_len

    prepared, splits, warnings = _prepare(tok, tmp_path)
    for name in ("train", "validation", "test"):
        assert not _answers(splits[name]) & too_long, f"{name}.jsonl holds records longer than cutoff_len"
    assert splits["test"] and splits["validation"]
    # every record is somewhere: a split, or rejects.jsonl with the reason training gives
    assert sum(len(s) for s in splits.values()) + len(prepared.rejects) == N
    assert {r.reason for r in prepared.rejects} == {"over_max_length"}
    assert len(prepared.rejects) == len(too_long)
    assert prepared.stats["kept"] == {name: len(s) for name, s in splits.items()}
    held_out = [r for r in prepared.rejects if r.message.startswith(("validation", "test"))]
    trained_out = len(prepared.rejects) - len(held_out)
    assert held_out, [r.message for r in prepared.rejects]
    lines = [w for w in warnings if "held-out" in w]
    held = len(splits["validation"]) + len(splits["test"]) + len(held_out)
    assert lines and f"{len(held_out)} of {held} held-out records" in lines[0], warnings
    assert f"over_max_length {len(held_out)}" in lines[0] and f"cutoff_len {CUTOFF}" in lines[0], lines
    assert f"{held - len(held_out)} remain (validation {len(splits['validation'])}, test {len(splits['test'])})" in lines[0]
    # the not-trained line counts what training left out, not the held-out records
    assert any(f"{trained_out} of {N} records are not trained" in w for w in warnings), warnings


def test_truncate_keeps_long_held_out_records_and_says_eval_scores_them_cut(tok, tmp_path: Path) -> None:
    rows = _rows()
    too_long = {r["output"] for r in rows if _length(tok, r) > CUTOFF}
    prepared, splits, warnings = _prepare(tok, tmp_path, overlength="truncate")
    assert not prepared.rejects  # truncated, as training truncates: every record kept
    assert sum(len(s) for s in splits.values()) == N
    cut = len((_answers(splits["validation"]) | _answers(splits["test"])) & too_long)
    assert cut
    lines = [w for w in warnings if "held-out" in w]
    assert lines and f"{cut} of {len(splits['validation']) + len(splits['test'])} held-out records" in lines[0]
    assert "truncated" in lines[0] and f"cutoff_len {CUTOFF}" in lines[0], lines
