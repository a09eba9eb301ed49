"""Deploy screen: Register talks to an in-process Ollama (tests/fake_ollama.py), Serve starts the real
llama.cpp server on a tiny GGUF, and leaving the screen stops it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from .helpers import open_deploy, screen_text, wait_until


def _error(app) -> str:
    return str(app.screen.query_one("#error").render())


async def _press(app, pilot, button: str) -> None:
    """Press a button as a click would; the error line above it can push it below a 30-row terminal."""
    app.screen.query_one(button).press()
    await pilot.pause()


async def test_register_shows_the_template_stops_and_smoke_answer(make_app, fake_ollama, phi3_vocab_gguf: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, phi3_vocab_gguf)
        name = app.screen.query_one("#ollama-name")
        name.value = "my-bot"
        await _press(app, pilot, "#register")
        await wait_until(pilot, lambda: "registered in Ollama as my-bot" in screen_text(app), what="registration")
        text = screen_text(app)
        assert "phi3 template" in text and "<|end|>" in text  # the stop token a user needs
        assert "smoke test: 'Hi! I am a tiny model.'" in text
        assert "ollama run my-bot" in text  # the snippet now names the registered model
    created = fake_ollama.models["my-bot"]
    # Phi-3's 4096-token window, not the wizard recipe's shorter cutoff_len (Ollama would drop a long chat's start)
    assert created["parameters"]["num_ctx"] == 4096 > app.load_recipe().cutoff_len
    from ftwiz.core.registry import find_model

    # registered from the wizard, as from `ftwiz register`: `ftwiz models list` shows the Ollama name
    # (the GGUF is shared by the session's tests: other registrations of it may be listed too)
    assert "my-bot" in [r.name for r in find_model("my-bot").ollama]


async def test_register_needs_a_name_and_ollama_errors_are_shown(make_app, fake_ollama, phi3_vocab_gguf: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    fake_ollama.create_error = "model family not supported"
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, phi3_vocab_gguf)
        app.screen.query_one("#ollama-name").value = ""
        await _press(app, pilot, "#register")
        await pilot.pause()
        assert "give the model a name for Ollama" in _error(app)
        app.screen.query_one("#ollama-name").value = "my-bot"
        await _press(app, pilot, "#register")
        await wait_until(pilot, lambda: "model family not supported" in _error(app), what="Ollama's error")
        assert "registered" not in screen_text(app)
    assert "my-bot" not in fake_ollama.models


async def test_deploy_without_an_export_says_what_to_do(make_app) -> None:
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, None)
        await _press(app, pilot, "#serve")
        await pilot.pause()
        assert "export a GGUF first" in _error(app)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(tiny_qwen2, tmp_path_factory.mktemp("serve") / "tiny-Q8_0.gguf", "Q8_0")


async def test_serve_answers_on_localhost_and_stops_when_the_wizard_closes(make_app, tiny_gguf: Path) -> None:
    from ftwiz.core.gguf_info import read_gguf_info

    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, tiny_gguf)
        await _press(app, pilot, "#serve")
        await wait_until(pilot, lambda: app.screen.server is not None, timeout=120, what="the llama.cpp server")
        server = app.screen.server
        assert server.base_url.startswith("http://127.0.0.1:")
        assert f"serving tiny-Q8_0 at {server.base_url}" in screen_text(app)
        # the context `ftwiz serve` would pick (the model's context_length, at most 4096), and why
        assert f"context {server.n_ctx} tokens (the model's context_length" in screen_text(app)
        assert server.n_ctx == min(read_gguf_info(tiny_gguf).context_length, 4096)
        assert f"curl {server.base_url}/chat/completions" in screen_text(app)
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as response:
            models = json.load(response)
        assert [m["id"] for m in models["data"]] == ["tiny-Q8_0"]
    server.process.wait(timeout=30)  # closing the wizard unmounted the screen, which stopped the server
    assert not server.alive()
