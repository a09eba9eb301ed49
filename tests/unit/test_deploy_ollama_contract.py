"""Registration against an in-process server that speaks Ollama's documented REST API.

The fake (tests/fake_ollama.py) implements /api/version, /api/blobs/:digest (HEAD + POST, digest
verified), /api/create (streamed status lines and streamed errors), /api/show, /api/chat and
/api/delete. The GGUF is
llama.cpp's vocab-only Phi-3 test file: real metadata (chat template, token types), no weights, which
is all registration reads. A real-server test runs when OLLAMA_HOST answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from pathlib import Path

import pytest
from fake_ollama import FakeOllama
from ftwiz.core.deploy.ollama_register import ollama_host, register
from ftwiz.core.errors import FtwizError


@pytest.fixture()
def phi3_gguf(phi3_vocab_gguf: Path) -> Path:
    return phi3_vocab_gguf


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_register_uploads_creates_and_smoke_tests(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    result = register(phi3_gguf, "my-bot:v1", num_ctx=1024, host=fake_ollama.url)
    assert result.digest == _digest(phi3_gguf)
    assert fake_ollama.blobs[result.digest] == phi3_gguf.read_bytes()
    assert result.uploaded and result.smoke is not None and result.smoke.done_reason == "stop"
    created = fake_ollama.models["my-bot:v1"]
    assert created["files"] == {phi3_gguf.name: result.digest}
    assert "system" not in created
    assert created["parameters"]["num_ctx"] == 1024
    assert "<|end|>" in created["parameters"]["stop"]  # Phi-3's end-of-turn, a control token in this GGUF
    assert "<|user|>" in created["template"] and "{{ .Content }}" in created["template"]
    assert result.family == "phi3"
    assert "FROM " in result.modelfile and 'PARAMETER stop "<|end|>"' in result.modelfile
    # the order Ollama's docs prescribe: version, blob check, upload, create, chat
    methods = [(m, p.split("/sha256")[0]) for m, p, _ in fake_ollama.requests]
    assert methods[:2] == [("GET", "/api/version"), ("POST", "/api/show")]
    assert methods[2:] == [("HEAD", "/api/blobs"), ("POST", "/api/blobs"), ("POST", "/api/create"),
                           ("POST", "/api/chat")]


def test_existing_blob_is_not_uploaded_again(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    fake_ollama.blobs[_digest(phi3_gguf)] = phi3_gguf.read_bytes()
    result = register(phi3_gguf, "again", host=fake_ollama.url, smoke_test=False)
    assert not result.uploaded
    assert not [p for p in fake_ollama.paths("POST") if p.startswith("/api/blobs/")]
    assert "again" in fake_ollama.models


def test_corrupted_upload_is_an_error_and_nothing_is_created(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    fake_ollama.corrupt_uploads = True
    with pytest.raises(FtwizError, match="digest mismatch"):
        register(phi3_gguf, "broken", host=fake_ollama.url)
    assert fake_ollama.models == {}


def test_streamed_create_error_surfaces_and_model_is_removed(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    fake_ollama.create_error = "unsupported architecture"
    with pytest.raises(FtwizError, match="unsupported architecture"):
        register(phi3_gguf, "half", host=fake_ollama.url)
    assert "half" not in fake_ollama.models  # never left half-registered
    assert ("DELETE", "/api/delete", {"model": "half"}) in fake_ollama.requests


def test_http_error_on_create_surfaces_with_status(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    fake_ollama.create_http_error = 400
    with pytest.raises(FtwizError, match=r"invalid model name \(HTTP 400\)"):
        register(phi3_gguf, "bad", host=fake_ollama.url)


@pytest.mark.parametrize(("answer", "done_reason", "message"), [
    ("I keep going and going", "length", "did not stop by itself"),
    ("Hello there<|end|>", "stop", "leaked stop token"),
    ("   ", "stop", "answered nothing"),
])
def test_failed_smoke_test_removes_the_model(fake_ollama: FakeOllama, phi3_gguf: Path, answer: str,
                                             done_reason: str, message: str) -> None:
    fake_ollama.answer, fake_ollama.done_reason = answer, done_reason
    with pytest.raises(FtwizError, match=message):
        register(phi3_gguf, "rambler", host=fake_ollama.url)
    assert "rambler" not in fake_ollama.models


def test_existing_name_needs_force(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    fake_ollama.models["taken"] = {"template": "x"}
    with pytest.raises(FtwizError, match="already exists"):
        register(phi3_gguf, "taken", host=fake_ollama.url)
    register(phi3_gguf, "taken", host=fake_ollama.url, overwrite=True)
    assert "<|end|>" in fake_ollama.models["taken"]["parameters"]["stop"]


def test_system_prompt_refused_when_the_template_drops_it(fake_ollama: FakeOllama, phi3_gguf: Path) -> None:
    # this Phi-3 revision's template ignores system messages: a SYSTEM would change nothing in training's
    # format but silently vanish, so ftwiz says so instead of registering
    with pytest.raises(FtwizError, match="no faithful place for a system prompt"):
        register(phi3_gguf, "sys-bot", system="Be brief.", host=fake_ollama.url)
    assert fake_ollama.requests == []


def test_invalid_name_is_rejected_before_any_network_call(phi3_gguf: Path) -> None:
    with pytest.raises(FtwizError, match="not a valid Ollama model name"):
        register(phi3_gguf, "bad name!", host="http://127.0.0.1:9")


def test_not_running_says_how_to_start(phi3_gguf: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeOllama()  # bound but never served... use its port after closing it: nothing listens there
    port_url = fake.url
    fake.server.server_close()
    monkeypatch.setenv("PATH", str(tmp_path))  # no `ollama` binary on PATH
    with pytest.raises(FtwizError) as info:
        register(phi3_gguf, "x", host=port_url)
    assert "not installed" in info.value.what and "ollama.com/download" in (info.value.fix or "")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ollama").write_text("#!/bin/sh\n")
    (bin_dir / "ollama").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(FtwizError) as info:
        register(phi3_gguf, "x", host=port_url)
    assert "not running" in info.value.what and "ollama serve" in (info.value.fix or "")


def test_host_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ollama_host() == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0")
    assert ollama_host() == "http://127.0.0.1:11434"
    assert ollama_host("myhost:1234") == "http://myhost:1234"
    assert ollama_host("https://example.org/") == "https://example.org:11434"


def test_cli_register_writes_registry_and_modelfile(fake_ollama: FakeOllama, phi3_gguf: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main
    from ftwiz.core.registry import find_model

    assert main(["register", str(phi3_gguf), "--name", "cli-bot", "--host", fake_ollama.url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "cli-bot" and out["smoke"]["done_reason"] == "stop"
    entry = find_model("cli-bot")
    # the shared test GGUF may carry registrations from other tests: find this one by its name
    assert entry.path == str(phi3_gguf.resolve())
    assert any(r.name == "cli-bot" and r.host == fake_ollama.url for r in entry.ollama)
    modelfile = tmp_path / "Modelfile"
    assert main(["register", str(phi3_gguf), "--modelfile", str(modelfile)]) == 0
    assert modelfile.read_text().startswith("# Written by ftwiz")
    # an unreachable Ollama is a user error (exit 2), not a traceback
    assert main(["register", str(phi3_gguf), "--name", "y", "--host", "http://127.0.0.1:9"]) == 2


def _real_ollama() -> str | None:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        return None
    try:
        with urllib.request.urlopen(ollama_host(host) + "/api/version", timeout=2):
            return host
    except OSError:
        return None


@pytest.mark.ollama
@pytest.mark.skipif(_real_ollama() is None, reason="no Ollama server answers at OLLAMA_HOST")
def test_real_ollama_round_trip(tiny_qwen2: Path, tmp_path: Path) -> None:
    convert = pytest.importorskip("ftwiz.core.export.convert", reason="the GGUF converter is not there yet")
    gguf = convert.convert_to_gguf(tiny_qwen2, tmp_path / "tiny.gguf", out_type="F16")
    from ftwiz.core.deploy.ollama_register import unregister

    try:
        result = register(gguf, "ftwiz-test-tiny", host=_real_ollama(), smoke_test=False, overwrite=True)
        assert result.digest == _digest(Path(gguf))
    finally:
        unregister("ftwiz-test-tiny", host=_real_ollama())


def test_cli_register_a_run_uses_its_recipe(fake_ollama: FakeOllama, phi3_gguf: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from ftwiz.core.cli import main

    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "r7"
    (run / "export").mkdir(parents=True)
    shutil.copy(phi3_gguf, run / "export" / "r7-Q8_0.gguf")
    recipe = "model_name_or_path: demo\ndataset: [demo]\nollama_name: r7-bot\ncutoff_len: 512\n"
    (run / "recipe.yaml").write_text(recipe + "system: Be brief.\n")
    # the recipe's system prompt has no faithful place in this template: refused before any upload
    assert main(["register", "r7", "--host", fake_ollama.url]) == 2
    assert "no faithful place for a system prompt" in " ".join(capsys.readouterr().err.split())
    assert fake_ollama.requests == []
    (run / "recipe.yaml").write_text(recipe)
    assert main(["register", "r7", "--host", fake_ollama.url]) == 0
    created = fake_ollama.models["r7-bot"]
    # num_ctx: Phi-3's 4096-token window, not the recipe's shorter cutoff_len (Ollama would drop a long chat's start)
    assert created["parameters"]["num_ctx"] == 4096 and created["files"] == {"r7-Q8_0.gguf": _digest(phi3_gguf)}
    assert "registered r7-bot" in " ".join(capsys.readouterr().out.split())
