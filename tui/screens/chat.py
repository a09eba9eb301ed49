"""Step 8, chat: talk to the fine-tuned model, offline, with answers streamed as they are generated.

Loading a GGUF and generating are blocking C calls (llama.cpp), so both run in a thread worker and the
chunks reach the log through ``call_from_thread``; the UI keeps answering keys while the model writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftwiz.tui.screens.base import WizardScreen
from rich.text import Text
from textual import on, work
from textual.widget import Widget
from textual.widgets import Input, RichLog, Static
from textual.worker import Worker, WorkerState


class ChatScreen(WizardScreen):
    STEP = "chat"
    NEXT = None

    def __init__(self) -> None:
        super().__init__()
        self.session: Any = None
        self.reply_parts: list[str] = []
        self.replies: list[str] = []

    def compose_body(self) -> Iterable[Widget]:
        model = self.wizard.state.chat_model or self.wizard.state.gguf_path
        yield Static(Text.assemble(("chatting with: ", "bold"), model or "(no model: export first)"), id="chat-model")
        yield RichLog(id="transcript", wrap=True, markup=False, highlight=False)
        yield Static("", id="typing")
        yield Input(id="prompt", placeholder="Type a message and press Enter")

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()

    @on(Input.Submitted, "#prompt")
    def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        model = self.wizard.state.chat_model or self.wizard.state.gguf_path
        if not text:
            return
        if not model:
            self.show_error("no model to chat with: export a GGUF first (Esc to go back)")
            return
        if any(w.group == "chat" and w.is_running for w in self.workers):
            self.notify("still answering the last message", severity="warning")
            return
        event.input.value = ""
        if text.startswith("/") and self.session is not None:
            result = self.session.run_command(text)  # /reset, /save FILE, /help ...
            if result is not None:
                self.query_one("#transcript", RichLog).write(Text(result.message, style="dim"))
                return
        self.query_one("#transcript", RichLog).write(Text.assemble(("you: ", "bold cyan"), text))
        self.query_one("#typing", Static).update(Text("model is writing...", style="dim"))
        self.reply_parts = []
        self.reply(model, text)

    @work(thread=True, exclusive=True, group="chat", exit_on_error=False)
    def reply(self, model: str, text: str) -> str:
        if self.session is None:
            from ftwiz.core.deploy.chat import ChatSession

            self.session = ChatSession(model, system=self.wizard.load_recipe().system)
        for chunk in self.session.stream_reply(text):
            self.app.call_from_thread(self._chunk, str(chunk))
        return "".join(self.reply_parts)

    def _chunk(self, chunk: str) -> None:
        self.reply_parts.append(chunk)
        self.query_one("#typing", Static).update(Text.assemble(("model: ", "bold green"), "".join(self.reply_parts)))

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "chat" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.query_one("#typing", Static).update("")
        if event.state == WorkerState.ERROR:
            self.show_error(event.worker.error or "the model could not answer")
            return
        reply = event.worker.result
        self.replies.append(reply)
        self.query_one("#transcript", RichLog).write(Text.assemble(("model: ", "bold green"), reply))
