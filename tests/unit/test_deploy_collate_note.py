"""Ollama merges consecutive same-role messages before the TEMPLATE runs (its ``collate``); the Modelfile says
so exactly when the model's own template keeps them apart. Oracle: the model's Jinja template (as training
renders it) against Ollama's prompt building modelled by the Go-template interpreter."""

from __future__ import annotations

import json

from ftwiz.core.chat_templates.render import render_chat
from ftwiz.core.deploy.collate_note import consecutive_turns_note
from ftwiz.core.deploy.probes import Renderer, ollama_prompt
from ftwiz.core.deploy.templates import ollama_template
from real_tokenizers import require_shared

TWO_USERS = [{"role": "user", "content": "Here is my text."}, {"role": "user", "content": "Summarise it."}]


def _template(name: str) -> str:
    folder = require_shared() / name
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    return json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]


def test_chatml_keeps_consecutive_turns_apart_so_the_modelfile_says_ollama_merges_them() -> None:
    chat_template = _template("Qwen2-1.5B-Instruct-Boundless")
    tmpl = ollama_template(chat_template, eos_token="<|im_end|>")
    trained = render_chat(chat_template, TWO_USERS, add_generation_prompt=True, eos_token="<|im_end|>")
    served = ollama_prompt(tmpl.template, TWO_USERS)
    assert trained.count("<|im_start|>user") == 2 and served.count("<|im_start|>user") == 1  # the real difference
    note = consecutive_turns_note(tmpl.template, Renderer(chat_template, eos_token="<|im_end|>"))
    assert note is not None and "ftwiz serve" in note and "two user messages in a row" in note


def test_mistral_v03_joins_them_itself_so_no_note() -> None:
    chat_template = _template("Mistral-7B-Instruct-v0.3")
    tmpl = ollama_template(chat_template, bos_token="<s>", eos_token="</s>", runtime_adds_bos=True)
    renderer = Renderer(chat_template, bos_token="<s>", eos_token="</s>", runtime_adds_bos=True)
    assert ollama_prompt(tmpl.template, TWO_USERS) == renderer.expected(TWO_USERS)
    assert consecutive_turns_note(tmpl.template, renderer) is None
