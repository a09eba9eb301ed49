"""The wizard refuses to serve, chat with or register a GGUF whose ``export --verify`` failed, as ``ftwiz serve``,
``ftwiz chat`` and ``ftwiz register`` do, and goes on only when the user confirms (the CLI's ``--force``).

Before, only the CLI checked the record: the wizard's Serve started llama.cpp on a GGUF the CLI refused. The GGUF
is a tiny one written with gguf-py (tests/meta_gguf.py) and its record is written beside it as ``export --verify``
writes it. Nothing heavy runs: the server's ``Popen`` and chat's ``Llama`` are stand-ins recording what they got.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.verify import Check, VerifyReport
from ftwiz.core.export.verify_record import record_path
from meta_gguf import write_gguf

from .helpers import open_deploy, screen_text, wait_until

DETAIL = "ids differ in prompt 2 at token 5"


@pytest.fixture()
def failed_gguf(tmp_path: Path) -> Path:
    path = write_gguf(tmp_path / "tuned-Q8_0.gguf", context_length=32768, cutoff_len=8192)
    report = VerifyReport(gguf_path=str(path), hf_model_dir="/hf/model", quant="Q8_0", checks=[
        Check(name="tokenization", passed=False, detail=DETAIL), Check(name="logits", passed=True)])
    record_path(path).write_text(report.to_json())
    return path


def _dialog_text(app) -> str:
    return str(app.screen.query_one("#question").render())


def _is_dialog(app) -> bool:
    from ftwiz.tui.screens.confirm import ConfirmScreen

    return isinstance(app.screen, ConfirmScreen)


async def test_serve_of_a_failed_gguf_asks_first_and_serves_only_when_confirmed(
        make_app, failed_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ftwiz.core.deploy.server as server

    started: list[list[str]] = []

    def popen(cmd: list[str], **_kwargs: object) -> None:
        started.append(cmd)
        raise FtwizError("stand-in: the server was started")

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, failed_gguf)
        deploy = app.screen
        deploy.query_one("#serve").press()
        await wait_until(pilot, lambda: _is_dialog(app), what="the refusal's question")
        question = _dialog_text(app)
        assert "failed `ftwiz export --verify`" in question and DETAIL in question  # the CLI's message
        assert "Serve it anyway?" in question
        await pilot.press("enter")  # Enter answers the safe way: not served
        await wait_until(pilot, lambda: app.screen is deploy, what="the dialog to close")
        await pilot.pause()
        assert started == []
        assert "tokenization" in str(deploy.query_one("#error").render())  # the refusal stays in view
        assert "serving" not in screen_text(app)

        deploy.query_one("#serve").press()
        await wait_until(pilot, lambda: _is_dialog(app), what="the question again")
        await pilot.press("y")  # "Serve anyway"
        await wait_until(pilot, lambda: started, what="the server to be started")
        cmd = started[0]
        assert cmd[cmd.index("--model") + 1] == str(failed_gguf.resolve())
        assert cmd[cmd.index("--n_ctx") + 1] == "8192"  # the context `ftwiz serve` picks: the trained cutoff_len
        await wait_until(pilot, lambda: "stand-in" in str(deploy.query_one("#error").render()), what="the result")


class _Llama:
    """llama-cpp-python's Llama as chat uses it: records each load, streams a fixed answer."""

    loads: list[dict[str, object]] = []

    def __init__(self, **kwargs: object) -> None:
        self.loads.append(kwargs)

    def create_chat_completion(self, **_kwargs: object) -> Iterator[dict[str, object]]:
        yield {"choices": [{"delta": {"content": "Hello."}, "finish_reason": None}]}
        yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

    def close(self) -> None:
        pass


async def test_chat_with_a_failed_gguf_asks_first_and_answers_only_when_confirmed(
        make_app, failed_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp
    from ftwiz.tui.screens.chat import ChatScreen

    monkeypatch.setattr(_Llama, "loads", [])
    monkeypatch.setattr(llama_cpp, "Llama", _Llama)
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.state.run_name = "demo"
        app.state.gguf_path = str(failed_gguf)
        app.goto("chat")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        chat = app.screen
        await pilot.pause()
        await pilot.press(*"hi", "enter")
        await wait_until(pilot, lambda: _is_dialog(app), what="the refusal's question")
        assert DETAIL in _dialog_text(app) and "Chat with it anyway?" in _dialog_text(app)
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is chat, what="the dialog to close")
        await pilot.pause()
        assert _Llama.loads == [] and chat.replies == []  # not loaded, not answered
        assert "export --verify" in str(chat.query_one("#error").render())

        await pilot.press(*"hi again", "enter")
        await wait_until(pilot, lambda: _is_dialog(app), what="the question again")
        await pilot.press("y")  # "Chat anyway": the refused message is answered
        await wait_until(pilot, lambda: chat.replies, what="the answer")
        assert chat.replies == ["Hello."]
        assert [Path(str(load["model_path"])) for load in _Llama.loads] == [failed_gguf.resolve()]
        assert _Llama.loads[0]["n_ctx"] == 8192  # the same context rule as Serve


async def test_register_of_a_failed_gguf_asks_first_and_registers_only_when_confirmed(
        make_app, fake_ollama, phi3_vocab_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil


    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    gguf = Path(shutil.copyfile(phi3_vocab_gguf, tmp_path / "phi3-Q8_0.gguf"))
    report = VerifyReport(gguf_path=str(gguf), hf_model_dir="/hf/model", quant="Q8_0",
                          checks=[Check(name="tokenization", passed=False, detail=DETAIL)])
    record_path(gguf).write_text(report.to_json())
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, gguf)
        deploy = app.screen
        deploy.query_one("#ollama-name").value = "refused-bot"
        deploy.query_one("#register").press()
        await wait_until(pilot, lambda: _is_dialog(app), what="the refusal's question")
        assert DETAIL in _dialog_text(app) and "Register it anyway?" in _dialog_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is deploy, what="the dialog to close")
        await pilot.pause()
        assert "refused-bot" not in fake_ollama.models
        deploy.query_one("#register").press()
        await wait_until(pilot, lambda: _is_dialog(app), what="the question again")
        await pilot.press("y")
        await wait_until(pilot, lambda: "registered in Ollama as refused-bot" in screen_text(app), what="registration")
    assert "refused-bot" in fake_ollama.models
