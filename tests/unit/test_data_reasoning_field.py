"""An answer's thought in its own field (``reasoning_content``, as Qwen3's template and R1-style distilled
data hold it) is trained as the model's own template renders it, or the record is refused by line.

Before: the field was dropped while reading, so Qwen3 learned an empty ``<think>`` block in front of every
answer and ``data check`` reported the record as fine. Oracle: transformers' apply_chat_template on the
record's messages as written.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from chat_family_tokenizers import load
from ftwiz.core.data import prepare_for_training
from ftwiz.core.data.mask_check import learned_runs
from ftwiz.core.recipe import parse_recipe

MESSAGES = [{"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "Two plus two\r\nmakes four."}]


def _prepare(tmp_path: Path, tokenizer, messages: list[dict] = MESSAGES):
    path = tmp_path / "thoughts.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                             {"role": "assistant", "content": "Hello."}]}) + "\n"
                    + json.dumps({"messages": messages}) + "\n", encoding="utf-8")
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": [str(path)], "val_size": 0.0, "test_size": 0.0,
                           "dedup": False})
    return prepare_for_training(recipe, tokenizer)


def test_qwen3_learns_the_thought_held_in_reasoning_content(shared_dir: Path, tmp_path: Path) -> None:
    qwen3 = load("qwen3")
    prepared = _prepare(tmp_path, qwen3)
    row = next(r for r in prepared.train if "2+2" in qwen3.decode(r["input_ids"]))
    as_written = [MESSAGES[0], dict(MESSAGES[1], reasoning_content="Two plus two\nmakes four.")]
    assert row["input_ids"] == qwen3.apply_chat_template(as_written, tokenize=True, return_dict=False)
    assert learned_runs(qwen3, row["input_ids"], row["labels"]) == [
        "<think>\nTwo plus two\nmakes four.\n</think>\n\n4<|im_end|>\n"]


def test_a_template_that_never_reads_the_field_refuses_the_record_by_line(shared_dir: Path, tmp_path: Path) -> None:
    qwen2 = load("qwen2")
    assert "Two plus two" not in qwen2.apply_chat_template(MESSAGES, tokenize=False)  # it would be dropped
    prepared = _prepare(tmp_path, qwen2)
    assert [qwen2.decode(r["input_ids"]).count("2+2") for r in prepared.train] == [0]
    [reject] = [r for r in prepared.rejects if r.reason == "reasoning_not_supported"]
    assert reject.line == 2 and "messages[1].reasoning_content" in reject.message
    assert "<think>" in reject.message


@pytest.mark.parametrize("key", ["reasoning_content", "thinking", "reasoning"])
def test_the_thought_is_read_from_each_field_name(key: str) -> None:
    from ftwiz.core.data.formats import normalise
    from ftwiz.core.data.records import RawRecord

    messages = [MESSAGES[0], {"role": "assistant", "content": "4", key: "Because."}]
    conv = normalise(RawRecord({"messages": messages}, "t.jsonl", 1), "openai")
    assert conv.messages[1][key] == "Because."


def test_a_preference_answer_with_a_separate_thought_is_refused_by_field(tmp_path: Path) -> None:
    """chosen/rejected are trained as their text alone (TRL renders them): a thought beside one would be
    dropped, so the pair is refused naming the field, and a pair without one is kept as written."""
    from ftwiz.core.data import check_dataset

    path = tmp_path / "pairs.jsonl"
    records = [
        {"prompt": [{"role": "user", "content": "2+2?"}],
         "chosen": [{"role": "assistant", "content": "4", "reasoning_content": "Two and two."}],
         "rejected": [{"role": "assistant", "content": "5"}]},
        {"prompt": [{"role": "user", "content": "2+3?"}], "chosen": [{"role": "assistant", "content": "5"}],
         "rejected": [{"role": "assistant", "content": "6"}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = check_dataset(str(path))
    assert [(r.line, r.reason, r.field) for r in report.rejects] == [
        (1, "reasoning_not_supported", "chosen[0].reasoning_content")]
    assert report.kept == 1


@pytest.mark.parametrize("key", ["thinking", "reasoning"])
def test_qwen3_learns_a_thought_under_the_other_field_names_as_apply_chat_template_renders_it(
        shared_dir: Path, tmp_path: Path, key: str) -> None:
    """transformers passes a 'thinking' or 'reasoning' field to the template as reasoning_content too; ftwiz
    rendered the field as written, so Qwen3 learned an empty <think> block and the record was said fine."""
    qwen3 = load("qwen3")
    messages = [MESSAGES[0], {"role": "assistant", "content": "4", key: "Two plus two makes four."}]
    prepared = _prepare(tmp_path, qwen3, messages)
    row = next(r for r in prepared.train if "2+2" in qwen3.decode(r["input_ids"]))
    assert row["input_ids"] == qwen3.apply_chat_template(messages, tokenize=True, return_dict=False)
    assert learned_runs(qwen3, row["input_ids"], row["labels"]) == [
        "<think>\nTwo plus two makes four.\n</think>\n\n4<|im_end|>\n"]


def test_a_template_that_only_names_the_word_thinking_still_refuses_the_record(shared_dir: Path,
                                                                               tmp_path: Path) -> None:
    """A template with an enable_thinking switch that reads no thought field: the word 'thinking' in its text
    was taken for reading the field, and the record trained without its thought."""
    qwen2 = copy.copy(load("qwen2"))  # a copy: load() is cached for the other tests
    qwen2.chat_template = "{%- set thinks = enable_thinking | default(true) %}" + qwen2.chat_template
    messages = [MESSAGES[0], {"role": "assistant", "content": "4", "thinking": "Two plus two makes four."}]
    assert "Two plus two" not in qwen2.apply_chat_template(messages, tokenize=False)  # the oracle: dropped
    prepared = _prepare(tmp_path, qwen2, messages)
    assert [qwen2.decode(r["input_ids"]).count("2+2") for r in prepared.train] == [0]
    [reject] = [r for r in prepared.rejects if r.reason == "reasoning_not_supported"]
    assert "messages[1].thinking" in reject.message and "<think>" in reject.message
