"""A system prompt on a template without a system role (Gemma 2's published one raises 'System role not
supported') is trained folded in front of the first user turn, as LLaMA-Factory does; chat, eval and the
serve snippets now send it the same way.

Before: ``ftwiz eval`` of such a run stopped with "the chat template refused the messages", ``ftwiz chat``
with llama.cpp's "System role not supported", and the ``ftwiz serve`` snippets sent a system turn the
server refuses. Oracle: transformers' ``apply_chat_template`` with Gemma's published template on the folded
conversation (and its refusal of the unfolded one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from char_engine import CharEngine
from chat_family_tokenizers import load
from ftwiz.core.evaluate.prompts import renderer_for_tokenizer
from ftwiz.core.evaluate.runner import Contender, _answer_all
from ftwiz.core.evaluate.samples import EvalSample
from ftwiz.core.evaluate.targets import ModelSpec

SYSTEM = "You are Aria. Answer in one sentence."
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Do you fix tyres?"}]
FOLDED = [{"role": "user", "content": f"{SYSTEM}\n\nDo you fix tyres?"}]


@pytest.fixture(scope="module")
def gemma(shared_dir: Path):
    tok = load("gemma")
    with pytest.raises(Exception, match="System role not supported"):  # the oracle refuses a system turn
        tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    return tok


def test_eval_prompts_a_system_prompt_as_training_folded_it(gemma, tmp_path: Path) -> None:
    answer = {"role": "assistant", "content": "Yes, every day."}
    sample = EvalSample(prompt=CHAT, reference=answer["content"], conversation=[*CHAT, answer])
    engine = CharEngine()
    _answer_all(Contender("tuned", ModelSpec("hf", tmp_path), engine, renderer_for_tokenizer(gemma)), [sample],
                max_new_tokens=1, cutoff=100_000, stop_ids=set(), events=None, done=0, total=1)
    prompt = gemma.apply_chat_template(FOLDED, tokenize=False, add_generation_prompt=True)
    full = gemma.apply_chat_template([*FOLDED, answer], tokenize=False)
    assert engine.prompts == [prompt]
    assert engine.scored == [full[len(prompt):]]


def test_chat_sends_the_system_prompt_folded(gemma) -> None:
    from ftwiz.core.deploy.chat import LlamaCppBackend

    sent = []

    class _Llm:
        def create_chat_completion(self, messages, **_kw):
            sent.append(messages)
            return iter([{"choices": [{"delta": {"content": "Yes."}, "finish_reason": "stop"}]}])

    backend = LlamaCppBackend.__new__(LlamaCppBackend)  # the loaded model replaced by a recorder
    backend.llm, backend.template = _Llm(), gemma.chat_template
    backend.bos_token, backend.eos_token, backend.last_finish_reason = gemma.bos_token, gemma.eos_token, None
    backend.text_stops = []  # Gemma's <end_of_turn> is a token: nothing to stop on as text
    assert "".join(backend.stream(CHAT, temperature=0.0, max_tokens=4, seed=None)) == "Yes."
    assert sent == [FOLDED]
    gemma.apply_chat_template(sent[0], tokenize=False, add_generation_prompt=True)  # what the server renders


def test_serve_snippets_fold_the_system_prompt_for_such_a_template(gemma, tmp_path: Path) -> None:
    from ftwiz.core.deploy.server import ServerHandle, snippets

    handle = ServerHandle(process=None, gguf=tmp_path / "m.gguf", host="127.0.0.1", port=8080,  # type: ignore[arg-type]
                          model_alias="aria", api_key=None, n_ctx=512, log_path=tmp_path / "log")
    text = snippets(handle, system=SYSTEM, template=gemma.chat_template)
    body = json.loads(text["curl"].split("-d '", 1)[1].rsplit("'", 1)[0])
    assert body["messages"] == [{"role": "user", "content": f"{SYSTEM}\n\nHello!"}]
    gemma.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)  # the server takes it
    assert SYSTEM in text["openai"] and '"system"' not in text["openai"] and '"system"' not in text["langchain"]
