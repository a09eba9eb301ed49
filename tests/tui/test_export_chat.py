"""Export (child process with progress) and chat (streamed replies) screens, with stand-in backends."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftwiz.core.paths import runs_dir

from .helpers import screen_text, wait_until

FAKE_EXPORT = Path(__file__).resolve().parent / "fake_export.py"


def _fake_run(name: str = "fake-run") -> Path:
    from ftwiz.tui.app import demo_recipe_path

    run = runs_dir() / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.yaml").write_text(Path(demo_recipe_path()).read_text())
    (run / "status.json").write_text(json.dumps({"state": "completed"}))
    return run


def _export_command(*extra: str):
    def command(run: str, quant: str) -> list[str]:
        return [sys.executable, str(FAKE_EXPORT), run, "--quant", quant, "--verify", "--events", "-", *extra]

    return command


async def _open_export(app, pilot) -> None:
    """The wizard on the export step of the stand-in run, its screen shown."""
    from ftwiz.tui.screens.export import ExportScreen

    app.state.run_name = "fake-run"
    app.goto("export")
    await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen), what="export screen")
    await pilot.pause()


async def test_export_shows_progress_and_hands_the_gguf_to_deploy(make_app) -> None:
    from ftwiz.tui.screens.deploy import DeployScreen

    _fake_run()
    app = make_app(export_command=_export_command(), offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_export(app, pilot)
        assert app.screen.query_one("#next").disabled
        assert app.screen.query_one("#quant").value == "Q8_0"  # the demo recipe's quantization first
        await pilot.press("enter")  # Export is focused
        await wait_until(pilot, lambda: app.state.gguf_path is not None, what="the export to finish")
        gguf = Path(app.state.gguf_path)
        assert gguf == runs_dir() / "fake-run" / "export" / "fake-run-Q8_0.gguf" and gguf.is_file()
        bar = app.screen.query_one("#progress")
        assert bar.progress == bar.total == 4
        await wait_until(pilot, lambda: not app.screen.query_one("#next").disabled, what="Continue")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen), what="deploy")
        assert "fake-run-Q8_0.gguf" in screen_text(app)
        # nothing is registered yet, so no `ollama run NAME` that would answer "model not found"
        assert "ollama run" not in screen_text(app)


async def test_ctrl_n_on_the_export_screen_exports_then_continues(make_app) -> None:
    """The first screen says Ctrl+N accepts the defaults; on export it used to do nothing at all."""
    from ftwiz.tui.screens.deploy import DeployScreen

    _fake_run()
    app = make_app(export_command=_export_command(), offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_export(app, pilot)
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: app.state.gguf_path is not None, what="the export started by Ctrl+N")
        await wait_until(pilot, lambda: not app.screen.query_one("#next").disabled, what="Continue")
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, DeployScreen), what="deploy")


async def test_a_failed_verification_is_shown_and_blocks_continue(make_app) -> None:
    _fake_run()
    app = make_app(export_command=_export_command("--fail"), offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_export(app, pilot)
        await pilot.click("#export")
        await wait_until(pilot, lambda: not app.screen.query_one("#error").has_class("hidden"), what="the error")
        await wait_until(pilot, lambda: not app.screen.query_one("#export").disabled,
                         what="Export to be offered again once the child exited")
        assert "top-1 token agreement" in str(app.screen.query_one("#error").render())
        assert app.state.gguf_path is None
        assert app.screen.query_one("#next").disabled


class ScriptedBackend:
    """A chat backend that answers from a script, piece by piece, like llama.cpp streaming."""

    label = "scripted"
    last_finish_reason = "stop"

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]], **_kwargs: object) -> Iterator[str]:
        self.seen.append(list(messages))
        yield from ["Hello", " from", " the", " tuned", " model."]

    def close(self) -> None:
        pass


async def test_chat_streams_the_reply_and_keeps_the_conversation(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.deploy import chat
    from ftwiz.tui.screens.chat import ChatScreen

    backend = ScriptedBackend()
    real = chat.ChatSession
    opened: list[str] = []

    def session(model: str, **kwargs: object) -> object:
        opened.append(model)
        return real(backend, **kwargs)

    monkeypatch.setattr(chat, "ChatSession", session)
    app = make_app(offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.state.gguf_path = "/models/tuned-Q8_0.gguf"
        app.goto("chat")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        await pilot.pause()
        await pilot.press(*"hi there", "enter")
        await wait_until(pilot, lambda: app.screen.replies, what="a reply")
        assert app.screen.replies == ["Hello from the tuned model."]
        await pilot.press(*"again", "enter")
        await wait_until(pilot, lambda: len(app.screen.replies) == 2, what="a second reply")
        assert opened == ["/models/tuned-Q8_0.gguf"]  # one session for the whole conversation
        roles = [m["role"] for m in backend.seen[-1]]
        assert roles[-3:] == ["user", "assistant", "user"]  # the second turn carries the first
        await pilot.press(*"/reset", "enter")
        await pilot.pause()
        assert app.screen.session.history == []


async def test_chat_without_a_model_says_to_export_first(make_app) -> None:
    from ftwiz.tui.screens.chat import ChatScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.goto("chat")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        await pilot.pause()
        await pilot.press(*"hi", "enter")
        await pilot.pause()
        assert "export a GGUF first" in str(app.screen.query_one("#error").render())


class BaseBackend(ScriptedBackend):
    label = "base"

    def stream(self, messages: list[dict[str, str]], **_kwargs: object) -> Iterator[str]:
        self.seen.append(list(messages))
        yield from ["I", " do", " not", " know."]


async def test_chat_compares_base_and_fine_tuned_side_by_side(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.deploy import chat
    from ftwiz.tui.screens.chat import ChatScreen

    tuned, base = ScriptedBackend(), BaseBackend()
    real = chat.ChatSession
    monkeypatch.setattr(chat, "ChatSession",
                        lambda model, **kw: real(base if model == "/models/base-Q8_0.gguf" else tuned, **kw))
    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.state.gguf_path = "/models/tuned-Q8_0.gguf"
        app.state.base_chat_model = "/models/base-Q8_0.gguf"  # as prepared by the first Ctrl+B
        app.goto("chat")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat")
        await pilot.press("ctrl+b")
        assert app.screen.compare
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: app.screen.replies, what="a reply")
        assert app.screen.base_replies == ["I do not know."] and app.screen.replies == ["Hello from the tuned model."]
        text = "\n".join(str(line.text) for line in app.screen.query_one("#transcript").lines)
        assert "base model" in text and "fine-tuned" in text and "I do not know." in text
        assert text.count("hello") == 1  # the question once ("you: hello"), not again above the answers


def test_base_model_of_a_run_gguf_is_found_from_its_run_card(tmp_path: Path) -> None:
    import json

    from ftwiz.tui.screens.chat import base_gguf_for

    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (tmp_path / "base-model").mkdir()
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(tmp_path / "base-model")}))
    base, target = base_gguf_for(str(run / "export" / "run-Q8_0.gguf"))
    # the base copy is kept apart from export/, so the run keeps resolving to its own fine-tune
    assert base == tmp_path / "base-model" and target == run / "base" / "base-Q8_0.gguf"
