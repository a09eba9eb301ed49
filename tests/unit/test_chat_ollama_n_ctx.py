"""``ftwiz chat NAME --n-ctx N`` with a model registered in Ollama asks Ollama for that context (``num_ctx`` in the
request's options, as Ollama's API documents it); the flag was ignored without a word for Ollama models."""

from __future__ import annotations

import pytest
from ftwiz.core.cli import main
from ftwiz.core.deploy.chat import ChatSession

CHATML = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
          "<|im_start|>assistant\n")


def _options_sent(fake_ollama) -> dict:
    method, path, body = fake_ollama.requests[-1]
    assert (method, path) == ("POST", "/api/chat")
    return body.get("options") or {}


def test_n_ctx_reaches_ollama_as_num_ctx(fake_ollama, capsys: pytest.CaptureFixture[str]) -> None:
    fake_ollama.models["my-model"] = {"model": "my-model", "template": CHATML, "system": ""}
    assert main(["chat", "my-model", "--once", "Hi", "--host", fake_ollama.url, "--n-ctx", "8192"]) == 0
    assert _options_sent(fake_ollama)["num_ctx"] == 8192
    assert "Hi! I am a tiny model." in capsys.readouterr().out

    assert main(["chat", "my-model", "--once", "Hi", "--host", fake_ollama.url]) == 0
    assert "num_ctx" not in _options_sent(fake_ollama)  # the Modelfile's own num_ctx stands


def test_the_chat_says_the_context_it_asked_ollama_for(fake_ollama) -> None:
    fake_ollama.models["my-model"] = {"model": "my-model", "template": CHATML, "system": ""}
    session = ChatSession("my-model", host=fake_ollama.url, n_ctx=8192)
    assert session.backend.context.n_ctx == 8192
    assert "num_ctx" in session.backend.context.reason
    assert getattr(ChatSession("my-model", host=fake_ollama.url).backend, "context", None) is None
