"""``template: chatml`` on a base whose vocabulary has no ``<|im_end|>`` token (TinyLlama's real tokenizer):
training ends every answer with the TEXT ``<|im_end|>`` and never with EOS, so ``ftwiz chat`` (llama.cpp) and
the Modelfile must stop on that text, or every answer runs on into a made-up next turn.

Oracle: what ``apply_chat_template`` writes right after an assistant answer, and the HF tokenizer saying
that it is not one special token. Before the fix both stopped on ``</s>`` only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chatml_llama import chatml_on_tinyllama_folder


@pytest.fixture(scope="module")
def chatml_on_tinyllama(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random Llama (hidden 32) with TinyLlama's tokenizer and the named chatml template, as a GGUF."""
    from ftwiz.core.export.pipeline import export_model

    folder = tmp_path_factory.mktemp("tinyllama-chatml")
    tok, _model = chatml_on_tinyllama_folder(folder)
    gguf = export_model(folder, ["F16"], out=folder / "model.gguf").gguf_paths[0]
    return tok, Path(gguf)


def _answer_ender(tok) -> str:
    """The marker training writes right after an answer, and a check that it is not a single token."""
    marker = "ZQXJ"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}],
                                   tokenize=False)
    ender = text[text.index(marker) + len(marker):].strip()
    assert ender == "<|im_end|>"
    assert len(tok(ender, add_special_tokens=False).input_ids) > 1  # plain text: no token can stop on it
    return ender


def test_modelfile_and_llama_cpp_chat_stop_on_a_text_end_of_turn(chatml_on_tinyllama, monkeypatch) -> None:
    from ftwiz.core.deploy.chat import LlamaCppBackend
    from ftwiz.core.deploy.modelfile import modelfile_spec

    tok, gguf = chatml_on_tinyllama
    ender = _answer_ender(tok)
    assert ender in modelfile_spec(gguf).stops  # Ollama's PARAMETER stop matches generated text

    backend = LlamaCppBackend(gguf, n_ctx=128)
    sent: dict = {}

    def create_chat_completion(**kwargs):
        sent.update(kwargs)
        return iter([{"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]}])

    monkeypatch.setattr(backend.llm, "create_chat_completion", create_chat_completion)
    try:
        assert "".join(backend.stream([{"role": "user", "content": "Hi"}], temperature=0, max_tokens=4,
                                      seed=0)) == "Hi"
    finally:
        backend.close()
    assert ender in (sent.get("stop") or []), "ftwiz chat does not stop where training ended the answer"


def test_llama_cpp_server_requests_stop_on_the_text_end_of_turn(chatml_on_tinyllama) -> None:
    """``ftwiz serve``: llama-cpp-python's server has no default stops, so its wrapper adds the marker to every
    chat completion's ``stop`` (keeping the client's own); other endpoints are left alone."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from ftwiz.core.deploy.llama_server import DefaultModel, _text_stops

    tok, gguf = chatml_on_tinyllama
    stops = _text_stops(str(gguf))
    assert stops == (_answer_ender(tok),)
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        return body

    @app.post("/v1/completions")
    async def completions(body: dict) -> dict:
        return body

    app.add_middleware(DefaultModel, alias="run", stops=stops)
    client = TestClient(app)
    assert client.post("/v1/chat/completions", json={"messages": []}).json()["stop"] == ["<|im_end|>"]
    assert client.post("/v1/chat/completions", json={"messages": [], "stop": "\n\n"}).json()["stop"] == [
        "\n\n", "<|im_end|>"]
    assert "stop" not in client.post("/v1/completions", json={"prompt": "Hi"}).json()  # raw text: no template
