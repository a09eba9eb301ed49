"""``ftwiz eval`` of a run trained with a thinking template and ``enable_thinking: false`` scores the answers
the run learned, not the reasoning training removed.

Training removes ``<think>`` reasoning from such answers (core/data/reasoning.py): the model learns to write
the answer right after the served empty think block. Eval kept the reasoning in the reference and in the
conversation whose answer tokens give the held-out loss, so the tuned model's loss and perplexity were
measured on thoughts it was taught not to write, and ROUGE/BLEU compared its answers with thought + answer.

Oracle: transformers' ``apply_chat_template`` with Qwen3's own template and ``enable_thinking=False``: the
text after the served generation prompt, for the conversation without its thought.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from char_engine import CharEngine
from chat_family_tokenizers import load
from ftwiz.core.evaluate.prompts import renderer_for_tokenizer
from ftwiz.core.evaluate.runner import Contender, _answer_all
from ftwiz.core.evaluate.samples import as_trained, load_samples
from ftwiz.core.evaluate.targets import ModelSpec

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
THOUGHT = "<think>\nTwo and two make four.\n</think>\n\nIt is 4."


@pytest.fixture(scope="module")
def qwen3(shared_dir: Path):
    return load("qwen3")


def test_eval_scores_the_answer_without_the_removed_thought(qwen3, tmp_path: Path) -> None:
    split = tmp_path / "test.jsonl"
    split.write_text(json.dumps({"messages": [*QUESTION, {"role": "assistant", "content": THOUGHT}]}) + "\n",
                     encoding="utf-8")
    renderer = renderer_for_tokenizer(qwen3, enable_thinking=False)
    samples = as_trained(load_samples(split), renderer)
    assert [s.reference for s in samples] == ["It is 4."]

    served = qwen3.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    full = qwen3.apply_chat_template([*QUESTION, {"role": "assistant", "content": "It is 4."}], tokenize=False,
                                     enable_thinking=False)
    assert full.startswith(served)
    engine = CharEngine()
    _answer_all(Contender("tuned", ModelSpec("hf", tmp_path), engine, renderer), samples, max_new_tokens=1,
                cutoff=100_000, stop_ids=set(), events=None, done=0, total=1)
    assert engine.scored == [full[len(served):]]


def test_thinking_on_keeps_the_thought(qwen3, tmp_path: Path) -> None:
    split = tmp_path / "test.jsonl"
    split.write_text(json.dumps({"messages": [*QUESTION, {"role": "assistant", "content": THOUGHT}]}) + "\n",
                     encoding="utf-8")
    for thinking in (True, None):
        samples = as_trained(load_samples(split), renderer_for_tokenizer(qwen3, enable_thinking=thinking))
        assert samples[0].reference == THOUGHT
