"""``ftwiz chat TUNED --compare BASE`` with an Ollama model as BASE asks it with no system prompt when the
fine-tune has none, as the fine-tune is asked.

Ollama's /api/chat puts the model's Modelfile SYSTEM in front of messages that start without a system message,
so the base answered with a system prompt the fine-tune never saw. Oracle: Ollama's prompt building, modelled by
ftwiz's Go-template interpreter, for the same messages to a model without a SYSTEM (the fake Ollama server
renders each request it gets that way, Modelfile SYSTEM included).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.cli import main
from ftwiz.core.deploy.probes import ollama_prompt

BASE_SYSTEM = "You are Base, a pirate. Always answer in pirate speak."
# Ollama's library ChatML TEMPLATE: a system block only {{ if .System }}
LIBRARY_TEMPLATE = ("{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                    "{{- range .Messages }}{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
                    "<|im_start|>assistant\n{{ else if eq .Role \"assistant\" }}{{ .Content }}<|im_end|>\n"
                    "{{ end }}{{- end }}")


@pytest.fixture()
def tuned_and_base(tiny_qwen2: Path, tmp_path: Path, fake_ollama, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fine-tune GGUF without a system prompt; Ollama holds two base models with a SYSTEM of their own: one
    registered by ftwiz (its TEMPLATE writes an empty system message as a turn) and one with a library TEMPLATE."""
    from ftwiz.core.deploy.register_step import register_inputs, register_model
    from ftwiz.core.export.convert import convert_to_gguf

    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    tuned = convert_to_gguf(tiny_qwen2, tmp_path / "tuned.gguf", "F16")
    register_model(register_inputs(tuned, name="ftwiz-base", system=BASE_SYSTEM), host=fake_ollama.url,
                   smoke_test=False)
    fake_ollama.models["library-base"] = {"model": "library-base", "template": LIBRARY_TEMPLATE,
                                          "system": BASE_SYSTEM}
    return tuned


@pytest.mark.parametrize("base", ["ftwiz-base", "library-base"])
def test_an_ollama_base_is_compared_without_its_modelfile_system(tuned_and_base: Path, fake_ollama, base: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    template = fake_ollama.models[base]["template"]
    assert main(["chat", base, "--once", "Hi", "--host", fake_ollama.url]) == 0  # asked alone: its own SYSTEM
    assert BASE_SYSTEM in fake_ollama.prompts[-1]
    assert main(["chat", str(tuned_and_base), "--once", "Hi", "--compare", base, "--host", fake_ollama.url,
                 "--max-tokens", "2", "--temperature", "0"]) == 0
    asked = fake_ollama.prompts[-1]
    assert asked == ollama_prompt(template, [{"role": "user", "content": "Hi"}])  # a model without a SYSTEM
    assert BASE_SYSTEM not in asked and "Hi! I am a tiny model." in capsys.readouterr().out
    # ftwiz's TEMPLATE renders an empty system message as an empty system turn (as the Jinja template does), so
    # that base gets the prompt a SYSTEM-less model renders as a raw prompt; the library one an empty system message
    sent = fake_ollama.requests[-1]
    if base == "ftwiz-base":
        assert sent[1] == "/api/generate" and sent[2]["raw"] is True
    else:
        first = sent[2]["messages"][0]  # the ollama client leaves out an empty content; Ollama reads it as ""
        assert sent[1] == "/api/chat" and first["role"] == "system" and not first.get("content")
    # with a system prompt of its own, the fine-tune's goes to the base too, through /api/chat as before
    assert main(["chat", str(tuned_and_base), "--once", "Hi", "--compare", base, "--host", fake_ollama.url,
                 "--max-tokens", "2", "--system", "Be terse."]) == 0
    assert fake_ollama.prompts[-1] == ollama_prompt(template, [{"role": "system", "content": "Be terse."},
                                                               {"role": "user", "content": "Hi"}])
    assert fake_ollama.paths("POST")[-1] == "/api/chat"
