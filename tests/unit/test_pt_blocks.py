"""Continued pre-training: a raw-text document longer than cutoff_len becomes consecutive blocks, no token cut.

The oracle is the tokenizer's own encoding of the whole document followed by its EOS token (what
Hugging Face's run_clm and LLaMA-Factory's pre-training preprocessing train on).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import prepare_for_training
from ftwiz.core.data.preview import stats_lines
from ftwiz.core.recipe import parse_recipe

CUTOFF = 64


@pytest.fixture(scope="module")
def qwen_tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def long_document(tok, tokens: float) -> str:
    """Words of the tiny corpus until the document (plus EOS) is about ``tokens`` tokens long."""
    from ftwiz.core.tiny.tokenizer import corpus_text

    words, text = corpus_text().split(), ""
    for word in words * 4:
        candidate = f"{text} {word}".strip()
        if len(tok(candidate, add_special_tokens=False)["input_ids"]) + 1 > tokens:
            break
        text = candidate
    return text


def write_texts(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def pt_recipe(data: Path, **fields):
    return parse_recipe({"model_name_or_path": "x", "dataset": [str(data)], "cutoff_len": CUTOFF, "val_size": 0.0,
                         "test_size": 0.0, "near_dedup_threshold": None} | fields)


def oracle_ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def test_a_document_3_5_cutoffs_long_becomes_4_blocks_holding_every_token(qwen_tok, tmp_path: Path) -> None:
    doc = long_document(qwen_tok, 3.5 * CUTOFF)
    expected = oracle_ids(qwen_tok, doc)
    assert 3 * CUTOFF < len(expected) <= 3.5 * CUTOFF
    prepared = prepare_for_training(pt_recipe(write_texts(tmp_path / "corpus.jsonl", [doc]), stage="pt"), qwen_tok)
    rows = prepared.train["input_ids"]
    assert len(rows) == 4 and [len(r) for r in rows[:3]] == [CUTOFF] * 3
    assert [t for row in rows for t in row] == expected  # nothing cut, nothing reordered, EOS at the end
    assert [t for row in prepared.train["labels"] for t in row] == expected  # every token is learned
    train = prepared.stats["train"]
    assert (train["documents"], train["blocks"], train["documents_split"]) == (1, 4, 1)
    assert train["dropped"] == 0 and train["truncated"] == 0 and train["over_cutoff"] == 0
    assert not prepared.rejects
    assert f"1 document -> 4 training blocks of <= {CUTOFF} tokens" in "\n".join(stats_lines(prepared, CUTOFF, 4))


def test_packed_blocks_stay_apart_and_every_token_is_kept(qwen_tok, tmp_path: Path) -> None:
    from ftwiz.core.train.packing import seq_lengths

    doc, short = long_document(qwen_tok, 2.5 * CUTOFF), "A short note about a cat."
    data = write_texts(tmp_path / "corpus.jsonl", [doc, short])
    prepared = prepare_for_training(pt_recipe(data, packing=True), qwen_tok)
    order = [r["messages"][0]["content"] for r in prepared.splits["train"]]  # the split's (seeded) order
    expected = [oracle_ids(qwen_tok, text) for text in order]
    rows = prepared.train
    assert all(len(row) <= CUTOFF for row in rows["input_ids"])
    assert [t for row in rows["input_ids"] for t in row] == [t for ids in expected for t in ids]
    # each block is its own sample: positions restart at 0 and its first token is context only
    blocks = [len(ids[i:i + CUTOFF]) for ids in expected for i in range(0, len(ids), CUTOFF)]
    assert [n for row in rows["position_ids"] for n in seq_lengths(row)] == blocks
    for row in rows:
        starts = {i for i, p in enumerate(row["position_ids"]) if p == 0}
        assert [lab for i, lab in enumerate(row["labels"]) if i in starts] == [-100] * len(starts)
        assert all(row["labels"][i] == row["input_ids"][i] for i in range(len(row["labels"])) if i not in starts)
    assert (prepared.stats["train"]["documents"], prepared.stats["train"]["blocks"]) == (2, 4)


def test_training_says_how_many_blocks_were_packed_into_how_many_rows(qwen_tok, tmp_path: Path) -> None:
    """train printed '5 training blocks' then '3 training samples' (rows after packing): now both, named."""
    from ftwiz.core.events import EventBus

    notes = ["A short note about a cat.", "The dog sat.", "Rain fell on the town."]
    data = write_texts(tmp_path / "corpus.jsonl", [long_document(qwen_tok, 1.5 * CUTOFF), *notes])
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    prepared = prepare_for_training(pt_recipe(data, packing=True, stage="pt"), qwen_tok, events=bus)
    rows = len(prepared.train)
    assert prepared.stats["train"]["blocks"] == 5 and rows < 5  # in any order, some short blocks share a row
    last = [e.message for e in seen if e.type == "progress"][-1]
    assert last == f"5 training samples packed into {rows} rows of <= {CUTOFF} tokens"


def test_conversations_over_cutoff_are_still_dropped_and_reported(qwen_tok, tmp_path: Path) -> None:
    doc = long_document(qwen_tok, 2 * CUTOFF)
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"instruction": "Say it.", "output": doc}) + "\n"
                    + json.dumps({"instruction": "Hi", "output": "Hello."}) + "\n", encoding="utf-8")
    prepared = prepare_for_training(pt_recipe(data), qwen_tok)
    assert len(prepared.train) == 1 and prepared.stats["train"]["dropped"] == 1
    assert "documents" not in prepared.stats["train"]
    assert [r.reason for r in prepared.rejects] == ["over_max_length"]


def test_data_check_and_preview_tell_documents_to_blocks(tiny_qwen2: Path, qwen_tok, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    data = write_texts(tmp_path / "corpus.jsonl", [long_document(qwen_tok, 3.5 * CUTOFF), "One short line."])
    common = [str(data), "--model", str(tiny_qwen2), "--cutoff-len", str(CUTOFF)]
    assert main(["data", "check", *common]) == 0
    assert f"2 documents -> 5 training blocks of <= {CUTOFF} tokens" in capsys.readouterr().out
    assert main(["data", "check", *common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == {"documents": 2, "blocks": 5, "documents_split": 1}
    assert main(["data", "check", str(data)]) == 0  # no tokenizer: the documents are counted, blocks promised
    assert "2 raw-text documents" in capsys.readouterr().out
    assert main(["data", "preview", *common]) == 0
    out = capsys.readouterr().out
    assert f"2 documents -> 5 training blocks of <= {CUTOFF} tokens" in out and "dropped 0, truncated 0" in out


def test_too_few_records_for_a_validation_split_is_said_not_silent(qwen_tok, tmp_path: Path) -> None:
    """4 documents with val_size 0.1: no eval loss ever appeared in train, and nothing said why."""
    from ftwiz.core.events import EventBus

    data = write_texts(tmp_path / "corpus.jsonl", ["A cat.", "A dog sat.", "Rain fell.", "The town slept."])
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    prepared = prepare_for_training(pt_recipe(data, stage="pt", val_size=0.1), qwen_tok, events=bus)
    assert not prepared.splits["validation"]
    warnings = [e.text for e in seen if e.type == "message" and e.level == "warning"]
    assert any("only 4 record(s)" in w and "no eval loss" in w for w in warnings), warnings
