"""OpenAI's fine-tuning format: an assistant message with ``"weight": 0`` is context, not a target.

OpenAI's chat fine-tuning JSONL lets a multi-turn example skip learning an assistant message with
``"weight": 0`` (1 = learn, the default). ftwiz read such files without a word and trained every assistant
turn, the ones the user excluded (typically bad or outdated answers kept for context) included.

Oracles: transformers' ``apply_chat_template`` for the tokens; the input file for which answers are targets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import check_dataset, prepare_for_training
from ftwiz.core.data.template import trained_text
from ftwiz.core.recipe import parse_recipe

MESSAGES = [{"role": "system", "content": "You are a maths tutor."},
            {"role": "user", "content": "What is 7 times 8?"},
            {"role": "assistant", "content": "It is 54.", "weight": 0},
            {"role": "user", "content": "Are you sure? Check again."},
            {"role": "assistant", "content": "Sorry: 7 times 8 is 56.", "weight": 1}]


@pytest.fixture(scope="module")
def tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def test_an_assistant_message_with_weight_0_is_not_learned(tok, tmp_path: Path) -> None:
    path = tmp_path / "openai.jsonl"
    path.write_text(json.dumps({"messages": MESSAGES}) + "\n", encoding="utf-8")
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": [str(path)], "val_size": 0.0, "test_size": 0.0})
    row = prepare_for_training(recipe, tok).train[0]

    plain = [{k: v for k, v in m.items() if k != "weight"} for m in MESSAGES]
    assert row["input_ids"] == tok.apply_chat_template(plain, tokenize=True, return_dict=True)["input_ids"]
    targets = [m["content"] for m in MESSAGES if m["role"] == "assistant" and m.get("weight", 1) == 1]
    assert trained_text(tok, row["input_ids"], row["labels"]) == "".join(f"{t}<|im_end|>\n" for t in targets)


def test_a_weight_other_than_0_or_1_is_rejected_by_line(tmp_path: Path) -> None:
    bad = [dict(m) for m in MESSAGES]
    bad[2]["weight"] = 0.5
    path = tmp_path / "openai.jsonl"
    path.write_text(json.dumps({"messages": MESSAGES}) + "\n" + json.dumps({"messages": bad}) + "\n",
                    encoding="utf-8")
    report = check_dataset(str(path))
    assert report.kept == 1
    assert [(r.line, r.field) for r in report.rejects] == [(2, "messages[2].weight")]
