"""Qwen3's own template with ``enable_thinking: false`` on answers that carry ``<think>`` reasoning.

Served (GGUF template, Ollama Modelfile) the prompt ends ``assistant\\n<think>\\n\\n</think>\\n\\n``; the
model must learn the answer that follows it, not a thought. Oracles: transformers' apply_chat_template on
the answers without their thoughts (what LLaMA-Factory trains), the served prompt as llama-cpp-python's
Jinja chat handler renders the exported template, and the named ``qwen3`` template.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_family_tokenizers import load
from ftwiz.core.chat_templates import NAMED_TEMPLATES, TemplateOfRecord, with_thinking_default
from ftwiz.core.data import prepare_for_training
from ftwiz.core.data.mask_check import learned_runs
from ftwiz.core.data.reasoning import strip_reasoning
from ftwiz.core.data.template import render_with_spans
from ftwiz.core.events import EventBus, Message
from ftwiz.core.export.verify import (
    THINKING_ANSWER,
    THINKING_CHAT,
    _gguf_render,
    _thinking_check,
    answer_mismatch,
)
from ftwiz.core.recipe import parse_recipe

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
LIME = [{"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "<think>\nThink about Lime.\n</think>\n\nLime."},
        {"role": "user", "content": "Where does it grow?"},
        {"role": "assistant", "content": "<think>\nThink about Lime.\n</think>\n\nIn orchards."}]


@pytest.fixture(scope="module")
def qwen3(shared_dir: Path):
    return load("qwen3")


class _Gguf:
    """The exported GGUF as the thinking check reads it: only its ``tokenizer.chat_template`` metadata."""

    def __init__(self, template: str) -> None:
        self.metadata = {"tokenizer.chat_template": template}


def _recipe(tmp_path: Path, **extra):
    path = tmp_path / "lime.jsonl"
    path.write_text(json.dumps({"messages": LIME}) + "\n"
                    + (CORPUS / "qwen3_thinking.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    return parse_recipe({"model_name_or_path": "x", "dataset": [str(path)], "val_size": 0.0, "test_size": 0.0,
                         "dedup": False, **extra})


def test_thinking_off_trains_the_answers_without_their_thoughts_after_the_served_prompt(qwen3, tmp_path) -> None:
    messages: list[Message] = []
    bus = EventBus([lambda e: messages.append(e) if isinstance(e, Message) else None])
    prepared = prepare_for_training(_recipe(tmp_path, enable_thinking=False), qwen3, events=bus)
    row = next(r for r in prepared.train if "Lime" in qwen3.decode(r["input_ids"]))
    assert learned_runs(qwen3, row["input_ids"], row["labels"]) == ["Lime.<|im_end|>\n", "In orchards.<|im_end|>\n"]
    answers = [dict(m, content=m["content"].split("</think>")[-1].lstrip("\n")) for m in LIME]
    assert row["input_ids"] == qwen3.apply_chat_template(answers, tokenize=True, enable_thinking=False,
                                                          return_dict=False)
    # the tokens before the last answer's learned run are exactly the prompt served for that answer
    labels = row["labels"]
    last_start = max(i for i in range(1, len(labels)) if labels[i] != -100 and labels[i - 1] == -100)
    served = qwen3.apply_chat_template(LIME[:3], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert served.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert qwen3.decode(row["input_ids"][:last_start]) == served
    warnings = [m.text for m in messages if m.level == "warning" and "reasoning" in m.text]
    assert len(warnings) == 1 and "2 record(s)" in warnings[0]
    assert prepared.stats["reasoning_removed"] == 2


def test_thinking_off_learns_what_the_named_qwen3_template_learns(qwen3) -> None:
    own = render_with_spans(qwen3, qwen3.chat_template, strip_reasoning(LIME)[0],
                            template_kwargs={"enable_thinking": False})
    named = render_with_spans(qwen3, NAMED_TEMPLATES["qwen3"], LIME, template_kwargs={"enable_thinking": False})
    assert [own[0][a:b] for a, b in own[1]] == [named[0][a:b] for a, b in named[1]] == [
        "Lime.<|im_end|>\n", "In orchards.<|im_end|>\n"]


def test_thinking_on_keeps_the_thoughts(qwen3, tmp_path) -> None:
    prepared = prepare_for_training(_recipe(tmp_path, enable_thinking=True), qwen3)
    row = next(r for r in prepared.train if "Lime" in qwen3.decode(r["input_ids"]))
    assert learned_runs(qwen3, row["input_ids"], row["labels"])[-1] == \
        "<think>\nThink about Lime.\n</think>\n\nIn orchards.<|im_end|>\n"
    assert "reasoning_removed" not in prepared.stats


def test_export_thinking_check_fails_on_a_thought_trained_under_thinking_off(qwen3) -> None:
    gguf_template = with_thinking_default(qwen3.chat_template, False)  # what export embeds for the run
    served = _gguf_render(gguf_template, qwen3, THINKING_CHAT)
    assert served.endswith("assistant\n<think>\n\n</think>\n\n")
    chat = THINKING_CHAT + [THINKING_ANSWER]
    old = render_with_spans(qwen3, gguf_template, chat, mask_history=True, template_kwargs={"enable_thinking": False})
    problem = answer_mismatch(*old, served)
    assert problem is not None and "Five times four" in problem  # the learned thought the old behaviour trained
    fixed = render_with_spans(qwen3, gguf_template, strip_reasoning(chat)[0], mask_history=True,
                              template_kwargs={"enable_thinking": False})
    assert answer_mismatch(*fixed, served) is None
    for thinking in (False, True, None):
        template = with_thinking_default(qwen3.chat_template, thinking)
        record = TemplateOfRecord(template, "model", None, thinking)
        check = _thinking_check(_Gguf(template), qwen3, record)
        assert check is not None and check.passed, check


def test_export_thinking_check_fails_when_the_gguf_serves_another_thinking_setting(qwen3) -> None:
    trained = TemplateOfRecord(with_thinking_default(qwen3.chat_template, True), "model", None, True)
    check = _thinking_check(_Gguf(with_thinking_default(qwen3.chat_template, False)), qwen3, trained)
    assert check is not None and not check.passed and "does not follow the served prompt" in check.detail


PAIRS = [{"prompt": "Name a fruit.", "chosen": "<think>\nThink about Lime.\n</think>\n\nLime.",
          "rejected": "<think>\nThink about cars.\n</think>\n\nA car."},
         {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "<think>\nHmm.\n</think>\n\nA fruit."}]


@pytest.mark.parametrize("stage", ["dpo", "kto"])
def test_preference_answers_follow_the_served_prompt_without_their_thoughts(qwen3, tmp_path, stage: str) -> None:
    """DPO/ORPO/KTO rows under enable_thinking false: every answer is what TRL renders after the served
    prompt (ending in the empty think block), with no thought; the warning counts them as SFT does."""
    from ftwiz.core.data.preference import preference_rows

    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS), encoding="utf-8")
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": [str(path)], "val_size": 0.0, "test_size": 0.0,
                           "dedup": False, "stage": stage, "enable_thinking": False})
    messages: list[Message] = []
    bus = EventBus([lambda e: messages.append(e) if isinstance(e, Message) else None])
    prepared = prepare_for_training(recipe, qwen3, events=bus)
    warnings = [m.text for m in messages if m.level == "warning" and "reasoning" in m.text]
    assert len(warnings) == 1 and "2 record(s)" in warnings[0] and prepared.stats["reasoning_removed"] == 2
    rows = preference_rows(prepared.splits["train"], stage, template=qwen3.chat_template,
                           template_kwargs={"enable_thinking": False})
    answers = [(r, r[k]) for r in rows for k in ("chosen", "rejected", "completion") if k in r]
    assert len(answers) == 4
    for row, answer in answers:
        served = qwen3.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True,
                                           enable_thinking=False)
        full = qwen3.apply_chat_template(row["prompt"] + answer, tokenize=False, enable_thinking=False)
        assert served.endswith("<think>\n\n</think>\n\n") and full.startswith(served)  # TRL's prompt is a prefix
        assert "Think about" not in full and "Hmm" not in full
    assert {a[0]["content"] for _, a in answers} == {"Lime.", "A car.", "Blue.", "A fruit."}
    kept = preference_rows(prepared.splits["train"], stage, template=qwen3.chat_template,
                           template_kwargs={"enable_thinking": True})
    assert any("<think>" in a[0]["content"] for r in kept for k in ("chosen", "rejected", "completion")
               if k in r for a in [r[k]])  # thinking on: the thoughts are trained
