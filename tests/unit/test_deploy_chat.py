"""Chat sessions: what MODEL means, history and commands, transcripts, and Ollama streaming."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftwiz.core.deploy.chat import ChatSession, resolve_chat_model
from ftwiz.core.errors import FtwizError


@pytest.fixture()
def phi3_gguf(shared_dir: Path) -> Path:
    return shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf"


def test_model_argument_resolution(tmp_path: Path, phi3_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    assert resolve_chat_model(phi3_gguf).kind == "gguf"
    assert resolve_chat_model("llama3.2:1b").kind == "ollama"
    assert resolve_chat_model("me/bot").kind == "ollama"
    run = tmp_path / "runs" / "r1"
    (run / "export").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\nsystem: Be brief.\n")
    with pytest.raises(FtwizError, match="has no trained model yet"):  # nothing to chat with before training
        resolve_chat_model("r1")
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(FtwizError, match="has no exported GGUF") as info:
        resolve_chat_model("r1")
    assert "ftwiz export r1" in (info.value.fix or "")
    shutil.copy(phi3_gguf, run / "export" / "r1-Q8_0.gguf")
    ref = resolve_chat_model("r1")
    assert ref.kind == "gguf" and ref.target.endswith("r1-Q8_0.gguf")
    assert ref.run_system_prompt() == "Be brief."  # chat a run with the system prompt it was trained with
    assert resolve_chat_model(phi3_gguf).run_system_prompt() is None
    with pytest.raises(FtwizError, match="GGUF file not found"):
        resolve_chat_model(str(tmp_path / "nope.gguf"))
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(FtwizError, match="not a .gguf"):
        resolve_chat_model(text)


class EchoBackend:
    """Answers with what it was sent, so tests see exactly which messages reach the model."""

    label = "echo"
    last_finish_reason: str | None = None

    def __init__(self) -> None:
        self.sent: list[list[dict[str, str]]] = []

    def stream(self, messages, *, temperature, max_tokens, seed) -> Iterator[str]:
        self.sent.append(messages)
        self.last_finish_reason = "stop"
        yield f"{len(messages)} messages"
        yield f" t={temperature}"

    def close(self) -> None:
        pass


def test_history_system_and_commands(tmp_path: Path) -> None:
    backend = EchoBackend()
    session = ChatSession(backend, system="Be brief.", temperature=0.2)
    assert list(session.stream_reply("hi")) == ["2 messages", " t=0.2"]
    assert session.reply("again") == "4 messages t=0.2"
    assert backend.sent[-1][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in backend.sent[-1]] == ["system", "user", "assistant", "user"]
    assert session.run_command("/temperature 0").message == "temperature 0.0"
    assert session.run_command("/temperature -1").message.startswith("usage")
    saved = tmp_path / "chat.json"
    assert session.run_command(f"/save {saved}").message == f"saved {saved}"
    transcript = json.loads(saved.read_text())
    assert [m["content"] for m in transcript["messages"]][1:] == ["hi", "2 messages t=0.2", "again", "4 messages t=0.2"]
    assert session.run_command(f"/save {saved}").message.startswith("not saved")  # never overwrites
    session.run_command("/reset")
    session.run_command("/system")
    assert session.reply("fresh") == "1 messages t=0.0"
    md = session.save(tmp_path / "chat.md")
    assert "**user**:" in md.read_text() and "fresh" in md.read_text()
    assert session.run_command("/exit").exit
    assert session.run_command("hello") is None
    assert "unknown command" in session.run_command("/bogus").message


def test_failed_turn_is_not_kept_in_history() -> None:
    class Broken(EchoBackend):
        def stream(self, messages, **kwargs) -> Iterator[str]:
            raise FtwizError("server went away")
            yield ""  # pragma: no cover

    session = ChatSession(Broken())
    with pytest.raises(FtwizError):
        session.reply("hi")
    assert session.history == []
    with pytest.raises(FtwizError, match="temperature"):
        ChatSession(EchoBackend(), temperature=-1)


def test_chat_with_an_ollama_model_streams(phi3_gguf: Path) -> None:
    from ftwiz.core.deploy.ollama_register import register
    from test_deploy_ollama_contract import FakeOllama

    fake = FakeOllama()
    fake.thread.start()
    try:
        register(phi3_gguf, "chatty", host=fake.url, smoke_test=False)
        fake.answer = "Nice to meet you, friend."
        session = ChatSession("chatty", host=fake.url, temperature=0)
        pieces = list(session.stream_reply("Hello"))
        assert len(pieces) > 1 and "".join(pieces) == "Nice to meet you, friend."
        assert session.last_finish_reason == "stop"
        chat_body = [body for m, p, body in fake.requests if p == "/api/chat"][-1]
        assert chat_body["options"]["temperature"] == 0 and chat_body["messages"][-1]["content"] == "Hello"
        with pytest.raises(FtwizError, match="register it first"):
            ChatSession("unknown-model", host=fake.url).reply("hi")
    finally:
        fake.server.shutdown()
        fake.server.server_close()
