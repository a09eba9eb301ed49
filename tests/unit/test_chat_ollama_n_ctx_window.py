"""``ftwiz chat NAME --n-ctx N`` with an Ollama model refuses an N beyond the model's context_length, as
``ftwiz register --num-ctx``, ``serve`` and a GGUF's ``chat --n-ctx`` do: it said "context 999999 tokens" and
sent it, while Ollama caps num_ctx at the model's window without a word. Oracle: the context_length Ollama reports
in ``/api/show``'s ``model_info``, read from the GGUF's ``<arch>.context_length`` (tests/fake_ollama.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from ftwiz.core.cli import main

CHATML = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
          "<|im_start|>assistant\n")


def _registered(fake_ollama, tmp_path: Path, context_length: int) -> None:
    """A model whose GGUF (metadata only: Ollama's model_info needs no weights) records ``context_length``."""
    from gguf import GGUFWriter

    path = tmp_path / "m.gguf"
    writer = GGUFWriter(str(path), "qwen2")
    writer.add_context_length(context_length)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    blob = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    fake_ollama.blobs[digest] = blob
    fake_ollama.models["my-model"] = {"model": "my-model", "template": CHATML, "system": "",
                                      "files": {"m.gguf": digest}}


def test_n_ctx_beyond_the_ollama_models_window_is_refused(fake_ollama, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _registered(fake_ollama, tmp_path, 1024)
    assert main(["chat", "my-model", "--once", "Hi", "--host", fake_ollama.url, "--n-ctx", "999999"]) == 2
    err = capsys.readouterr().err
    assert "--n-ctx 999999 is more than the model's context_length 1024" in err, err
    assert "give at most 1024 tokens" in err
    assert not fake_ollama.paths("POST").count("/api/chat")  # nothing was sent


def test_n_ctx_within_the_window_is_sent(fake_ollama, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _registered(fake_ollama, tmp_path, 1024)
    assert main(["chat", "my-model", "--once", "Hi", "--host", fake_ollama.url, "--n-ctx", "1024"]) == 0
    assert fake_ollama.requests[-1][2]["options"]["num_ctx"] == 1024
    assert "Hi! I am a tiny model." in capsys.readouterr().out
