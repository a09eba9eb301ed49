"""A request whose system message is empty (``{"role": "system", "content": ""}``, as chat UIs with an empty
system field send it) reaches the model through Ollama as it did in training.

The real templates render an empty system turn for it (Qwen2's ``<|im_start|>system\\n<|im_end|>``, Phi-3's
``<|system|>\\n<|end|>``, TinyLlama's ``<|system|>\\n</s>``), which is not what they render without a system
message (Qwen2: its default "You are a helpful assistant."). Ollama hands the TEMPLATE ``.System`` = "" in
both cases, but keeps the system message in ``.Messages``; the TEMPLATE used to test ``.System`` and so
dropped the empty turn, or wrote Qwen2's default prompt instead. Oracle: ``apply_chat_template`` with the
real tokenizers; Ollama's prompt building modelled by ftwiz's Go-template interpreter.
"""

from __future__ import annotations

import pytest
from ftwiz.core.deploy.templates import ollama_prompt, ollama_template
from real_tokenizers import real_tokenizer

EMPTY_SYSTEM = [
    [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
     {"role": "user", "content": "Name a fruit."}],
]
OTHERS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
]


@pytest.mark.parametrize("name", ["Qwen2-1.5B-Instruct-Boundless", "Qwen3-0.6B", "Phi-3-mini-4k-instruct",
                                  "TinyLlama-1.1B-Chat-v1.0", "Mistral-7B-Instruct-v0.3"])
def test_an_empty_system_message_is_prompted_as_in_training(name: str) -> None:
    tok = real_tokenizer(name)
    adds_bos = tok.bos_token_id is not None and tok("hi").input_ids[:1] == [tok.bos_token_id]
    result = ollama_template(tok.chat_template, bos_token=tok.bos_token, eos_token=tok.eos_token,
                             runtime_adds_bos=adds_bos, enable_thinking=False if "Qwen3" in name else None)
    assert result.system_supported
    kwargs = {"enable_thinking": False} if "Qwen3" in name else {}
    for messages in EMPTY_SYSTEM + OTHERS:
        trained = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
        if adds_bos and trained.startswith(tok.bos_token):  # the runtime writes it as a token
            trained = trained[len(tok.bos_token):]
        assert ollama_prompt(result.template, messages) == trained, messages
