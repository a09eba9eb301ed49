"""Every record training leaves out is reported, and what is reported as left out is not trained.

Oracle: the input file itself (which records have a prompt or an answer longer than ``cutoff_len``) and
transformers' ``apply_chat_template`` for the token counts, never ftwiz's own rendering.
- ``overlength: truncate`` on a record whose prompt alone fills ``cutoff_len`` leaves no answer token to
  learn: that record was dropped without a reject, a warning or a count (``train`` said "13 training
  samples" for 18 records and nothing else).
- ``train`` printed nothing about rejected records at all: the user learnt of them only by opening the
  run's ``data/rejects.jsonl``.
- A preference run (``stage: dpo``) with ``overlength: drop`` listed long pairs in ``rejects.jsonl`` as
  dropped, yet TRL trained on them, truncated (the split handed to it still held them); a pair whose
  *rejected* answer was the long one was not even measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import prepare_for_training
from ftwiz.core.data.preference import preference_dataset
from ftwiz.core.events import EventBus, Message
from ftwiz.core.recipe import parse_recipe

CUTOFF = 64


@pytest.fixture(scope="module")
def tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def _length(tok, messages: list[dict]) -> int:
    """Tokens of the conversation as the model's own template renders it (the oracle)."""
    return len(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def _prepare(tok, path: Path, **recipe):
    seen: list[Message] = []
    bus = EventBus([lambda e: seen.append(e) if isinstance(e, Message) else None])
    data = {"model_name_or_path": "x", "dataset": [str(path)], "cutoff_len": CUTOFF, "val_size": 0.0,
            "test_size": 0.0, "dedup": False, **recipe}
    return prepare_for_training(parse_recipe(data), tok, events=bus), [m.text for m in seen if m.level == "warning"]


def test_truncation_that_leaves_no_answer_is_a_reject_with_its_record(tok, tmp_path: Path) -> None:
    long_prompt = "tell me a long story about the cat and the dog " * 8
    rows = [{"instruction": (long_prompt if i % 4 == 0 else "a short question") + f" {i}", "input": "",
             "output": f"answer {i}"} for i in range(12)]
    path = tmp_path / "long_prompts.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    prompt_fills = [i for i, r in enumerate(rows)
                    if _length(tok, [{"role": "user", "content": r["instruction"]}]) >= CUTOFF]
    assert prompt_fills == [0, 4, 8]  # the oracle: these prompts alone fill cutoff_len

    prepared, warnings = _prepare(tok, path, overlength="truncate")
    lost = sorted(r.index for r in prepared.rejects if r.reason == "no_learned_tokens")
    assert lost == prompt_fills, [r.to_json() for r in prepared.rejects]
    assert all(r.file == str(path) for r in prepared.rejects)
    assert len(prepared.train) + len(prepared.rejects) == len(rows)  # counts add up
    trained = {m["content"] for rec in prepared.splits["train"] for m in rec["messages"] if m["role"] == "assistant"}
    assert trained == {f"answer {i}" for i in range(12) if i not in prompt_fills}  # train.jsonl = what is trained
    assert any("3 of 12 records" in w and "no_learned_tokens 3" in w for w in warnings), warnings


def test_training_says_how_many_records_it_leaves_out_and_why(tok, tmp_path: Path) -> None:
    rows = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(10)]
    rows[2]["output"] = ""  # rejected when read
    rows[5]["output"] = "a very long answer about many things " * 12  # over cutoff_len: dropped
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert _length(tok, [{"role": "user", "content": rows[5]["instruction"]},
                         {"role": "assistant", "content": rows[5]["output"]}]) > CUTOFF

    prepared, warnings = _prepare(tok, path)
    assert len(prepared.train) == 8
    assert sorted((r.index, r.reason) for r in prepared.rejects) == [(2, "empty_assistant_turn"),
                                                                    (5, "over_max_length")]
    note = [w for w in warnings if "2 of 10 records" in w]
    assert note and "empty_assistant_turn 1" in note[0] and "over_max_length 1" in note[0], warnings
    assert len(prepared.splits["train"]) == 8


def test_preference_pairs_dropped_for_length_are_not_handed_to_the_trainer(tok, tmp_path: Path) -> None:
    long = "a long answer that goes on and on about cats " * 10
    rows = []
    for i in range(12):
        chosen, rejected = f"good {i}", f"bad {i}"
        if i in (1, 6):
            chosen = long + str(i)
        if i in (3, 9):
            rejected = long + str(i)  # only the rejected answer is long
        rows.append({"conversations": [{"from": "human", "value": f"question {i}?"}],
                     "chosen": {"from": "gpt", "value": chosen}, "rejected": {"from": "gpt", "value": rejected}})
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")

    def too_long(row: dict) -> bool:
        prompt = [{"role": "user", "content": row["conversations"][0]["value"]}]
        return any(_length(tok, [*prompt, {"role": "assistant", "content": row[key]["value"]}]) > CUTOFF
                   for key in ("chosen", "rejected"))

    expected_out = [i for i, row in enumerate(rows) if too_long(row)]
    assert expected_out == [1, 3, 6, 9]

    prepared, warnings = _prepare(tok, path, stage="dpo")
    assert sorted(r.index for r in prepared.rejects if r.reason == "over_max_length") == expected_out
    pairs = preference_dataset(prepared.splits["train"], "dpo")  # what the DPO trainer is given
    prompts = sorted(int(r["prompt"][-1]["content"].split()[1].rstrip("?")) for r in pairs)
    assert prompts == [i for i in range(12) if i not in expected_out]
    assert any("4 of 12 records" in w for w in warnings), warnings


def test_a_preference_plan_is_long_enough_for_the_rejected_answers(tok, tiny_qwen2: Path, tmp_path: Path) -> None:
    """The plan's max length (TRL's ``max_length``) came from the chosen answers only: with every rejected
    answer longer, the DPO trainer cut the end of each rejected answer off, within cutoff_len."""
    from ftwiz.core.planner.recommend import plan_recipe

    rows = [{"conversations": [{"from": "human", "value": f"question {i}?"}],
             "chosen": {"from": "gpt", "value": f"good {i}"},
             "rejected": {"from": "gpt", "value": "a rambling answer about cats " * 14 + str(i)}} for i in range(12)]
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    longest_rejected = max(_length(tok, [{"role": "user", "content": r["conversations"][0]["value"]},
                                         {"role": "assistant", "content": r["rejected"]["value"]}]) for r in rows)
    assert 64 < longest_rejected < 512  # within cutoff_len below, and longer than the first 64-token step

    prepared, _warnings = _prepare(tok, path, stage="dpo", cutoff_len=512)
    assert len(preference_dataset(prepared.splits["train"], "dpo")) == 12
    recipe = parse_recipe({"model_name_or_path": str(tiny_qwen2), "dataset": [str(path)], "stage": "dpo",
                           "cutoff_len": 512})
    plan = plan_recipe(recipe, vram_gb=8, dataset_lengths=prepared.stats["train"]["lengths"])
    assert plan.max_seq_len >= longest_rejected


def test_sft_on_answers_marked_undesirable_says_it_learns_them(tok, tmp_path: Path) -> None:
    """KTO data (``kto_tag``/``label`` false = a bad answer) trained with the default ``stage: sft`` learnt the
    bad answers as good ones, without a word."""
    rows = [{"instruction": f"Name fruit number {i}.", "output": "Apple." if i % 3 else "A rock.",
             "kto_tag": bool(i % 3)} for i in range(12)]
    path = tmp_path / "kto.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    bad = sum(1 for r in rows if r["kto_tag"] is False)
    assert bad == 4

    _prepared, warnings = _prepare(tok, path)
    note = [w for w in warnings if "undesirable" in w]
    assert note and f"{bad} training records" in note[0] and "stage: kto" in note[0], warnings
    assert f"{path}, line 1" in note[0]  # the first marked record, by its line
    _prepared, warnings = _prepare(tok, path, stage="kto")
    assert not [w for w in warnings if "undesirable" in w]


def test_pairs_that_differ_in_the_rejected_answer_are_not_near_duplicates(tok, tmp_path: Path) -> None:
    """Near-duplicate detection compared prompt + chosen only: preference data with several rejected answers
    per prompt (UltraFeedback-style) lost two pairs in three as 'near duplicates'."""
    rejected = ["I refuse.", "No idea, go away.", "It is complicated; read a textbook about quantum mechanics."]
    rows = [{"conversations": [{"from": "human", "value": f"Explain topic {q} to a child in simple words please."}],
             "chosen": {"from": "gpt", "value": f"Topic {q} is like a small game where everyone shares toys and "
                                                "takes turns kindly."},
             "rejected": {"from": "gpt", "value": answer}} for q in range(4) for answer in rejected]
    rows.append(dict(rows[0]))  # one real duplicate: still removed
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    distinct = {json.dumps(r, sort_keys=True) for r in rows}
    assert len(distinct) == 12

    prepared, warnings = _prepare(tok, path, stage="dpo", cutoff_len=256, dedup=True)
    kept = {(r["messages"][-1]["content"], r["chosen"], r["rejected"]) for r in prepared.splits["train"]}
    assert len(prepared.splits["train"]) == len(kept) == 12
    assert prepared.stats["exact_duplicates"] == 1 and prepared.stats.get("near_duplicates", 0) == 0
    assert any("1 duplicate" in w for w in warnings), warnings  # what training left out is said


def test_mixed_in_general_records_get_the_recipe_system_prompt(tok, tmp_path: Path) -> None:
    """``system:`` is the default for records without one, and chat/serve send it with every conversation;
    the general records ``mix_dataset`` adds were trained without it (and without whitespace clean-up)."""
    own, general = tmp_path / "own.jsonl", tmp_path / "general.jsonl"
    own.write_text("".join(json.dumps({"instruction": f"Bike question {i}?", "output": f"Bike answer {i}."}) + "\n"
                           for i in range(10)), encoding="utf-8")
    general.write_text("".join(json.dumps({"instruction": f"General question {i}?\r\n", "output": f"Answer {i}. "})
                               + "\n" for i in range(10)), encoding="utf-8")
    prepared, _warnings = _prepare(tok, own, system="You are Aria.", mix_dataset=str(general), mix_ratio=0.5)
    records = prepared.splits["train"]
    assert any(m["content"].startswith("General") for r in records for m in r["messages"])
    assert all(r["messages"][0] == {"role": "system", "content": "You are Aria."} for r in records)
    assert all(m["content"] == m["content"].strip() for r in records for m in r["messages"])
