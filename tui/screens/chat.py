"""Step 8, chat: talk to the fine-tuned model, offline, with answers streamed as they are generated.

Loading a GGUF and generating are blocking C calls (llama.cpp), so both run in a thread worker and the
chunks reach the log through ``call_from_thread``; the UI keeps answering keys while the model writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftwiz.tui.screens.base import WizardScreen
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, RichLog, Static
from textual.worker import Worker, WorkerState


def base_gguf_for(tuned_gguf: str) -> tuple[Path, Path]:
    """(base model folder, where its Q8_0 GGUF copy is) for a GGUF exported from an ftwiz run.

    The copy goes to the run's ``base/`` folder, apart from ``export/``, so the run itself keeps
    resolving to its fine-tuned export (``ftwiz chat RUN``, ``serve``, ``register``, ``models list``).
    """
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.rundir import RunDir

    run = RunDir.of_file(tuned_gguf)
    if run is None:
        raise FtwizError(f"{tuned_gguf} is not in an ftwiz run, so its base model is unknown", where=tuned_gguf,
                         fix="chat with a run's export to compare it with its base model")
    base = run.base_model_dir()
    if base is None:
        raise FtwizError(f"run '{run.name}' does not record a base model found on this machine",
                         where=str(run.run_card), fix="download the base model, then try again")
    return base, run.existing_base_gguf("Q8_0") or run.base_gguf_path("Q8_0")


def side_by_side(prompt: str, base: str, tuned: str) -> Table:
    """Both answers in two columns; the prompt is already in the transcript ("you: ..."), so not again."""
    table = Table(expand=True, show_lines=False)
    table.add_column("base model", ratio=1)
    table.add_column("fine-tuned", ratio=1, style="green")
    table.add_row(base, tuned)
    return table


class ChatScreen(WizardScreen):
    STEP = "chat"
    NEXT = None
    BINDINGS = [Binding("ctrl+b", "toggle_compare", "Compare with base")]

    def __init__(self) -> None:
        super().__init__()
        self.session: Any = None
        self.base_session: Any = None
        self.compare = False
        self.reply_parts: list[str] = []
        self.replies: list[str] = []
        self.base_replies: list[str] = []
        self.force_unverified = False  # the user chose "Chat anyway" for a GGUF whose `export --verify` failed
        self.pending = ""  # the message being answered: sent again once the user chooses "Chat anyway"

    def action_toggle_compare(self) -> None:
        """Base and fine-tuned answers side by side: the base is exported once (Q8_0) next to the run."""
        self.compare = not self.compare
        log = self.query_one("#transcript", RichLog)
        if not self.compare:
            log.write(Text("comparison off: only the fine-tuned model answers", style="dim"))
            return
        if self.wizard.state.base_chat_model:
            log.write(Text("comparison on: the base model answers each message too", style="dim"))
            return
        model = self.wizard.state.chat_model or self.wizard.state.gguf_path
        if not model:
            self.compare = False
            self.show_error("no model to compare: export a GGUF first")
            return
        log.write(Text("preparing the base model for comparison (exported once to Q8_0)...", style="dim"))
        self.prepare_base(model)

    @work(thread=True, exclusive=True, group="base", exit_on_error=False)
    def prepare_base(self, tuned: str) -> str:
        from ftwiz.core.export.convert import convert_to_gguf

        base_dir, target = base_gguf_for(tuned)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            convert_to_gguf(base_dir, target, "Q8_0")
        return str(target)

    def compose_body(self) -> Iterable[Widget]:
        model = self.wizard.state.chat_model or self.wizard.state.gguf_path
        yield Static(Text.assemble(("chatting with: ", "bold"), model or "(no model: export first)"), id="chat-model")
        from ftwiz.core.recipe_inputs import demo_model_note

        note = demo_model_note(self.wizard.load_recipe())
        if note:  # answers that did not change are the model's size, not a failed fine-tune
            yield Static(Text(note, style="yellow"), id="demo-note")
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
        self.pending = text
        self.reply(model, text)

    @work(thread=True, exclusive=True, group="chat", exit_on_error=False)
    def reply(self, model: str, text: str) -> str:
        from ftwiz.core.deploy.chat import ChatSession
        from ftwiz.core.recipe_inputs import filled_system

        system = filled_system(self.wizard.load_recipe())[0]  # {{name}} filled from variables:, as trained
        if self.session is None:  # refuses a GGUF whose `export --verify` failed, as `ftwiz chat` does
            self.session = ChatSession(model, system=system, force_unverified=self.force_unverified)
        for chunk in self.session.stream_reply(text):
            self.app.call_from_thread(self._chunk, str(chunk))
        tuned = "".join(self.reply_parts)
        base_model = self.wizard.state.base_chat_model
        if self.compare and base_model:
            if self.base_session is None:
                self.base_session = ChatSession(base_model, system=system, force_unverified=self.force_unverified)
            base = self.base_session.reply(text)
            self.base_replies.append(base)
            self.app.call_from_thread(self.query_one("#transcript", RichLog).write, side_by_side(text, base, tuned))
        return tuned

    def _chunk(self, chunk: str) -> None:
        self.reply_parts.append(chunk)
        self.query_one("#typing", Static).update(Text.assemble(("model: ", "bold green"), "".join(self.reply_parts)))

    def on_unmount(self) -> None:
        for session in (self.session, self.base_session):
            if session is not None:
                session.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "base" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            log = self.query_one("#transcript", RichLog)
            if event.state == WorkerState.ERROR:
                self.compare = False
                self.show_error(f"cannot prepare the base model: {event.worker.error}")
            else:
                self.wizard.state.base_chat_model = event.worker.result
                log.write(Text("comparison on: the base model answers each message too", style="dim"))
            return
        if event.worker.group != "chat" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.query_one("#typing", Static).update("")
        if event.state == WorkerState.ERROR:
            from ftwiz.core.export.verify_record import VerifyFailedRefusal

            self.show_error(event.worker.error or "the model could not answer")
            if isinstance(event.worker.error, VerifyFailedRefusal):  # the CLI's --force, as a question
                self._ask_anyway(event.worker.error)
            return
        reply = event.worker.result
        self.replies.append(reply)
        if not (self.compare and self.wizard.state.base_chat_model):  # else the side-by-side table shows it
            self.query_one("#transcript", RichLog).write(Text.assemble(("model: ", "bold green"), reply))

    def _ask_anyway(self, refusal: BaseException) -> None:
        """The refusal as the CLI says it; the message is answered by the refused GGUF only if the user says so
        (Enter and Esc keep it refused)."""
        from ftwiz.tui.screens.base import error_text
        from ftwiz.tui.screens.confirm import ConfirmScreen

        def answered(anyway: bool | None) -> None:
            model = self.wizard.state.chat_model or self.wizard.state.gguf_path
            if not anyway or not model or not self.pending:
                return
            self.force_unverified = True
            self.show_error(None)
            self.query_one("#typing", Static).update(Text("model is writing...", style="dim"))
            self.reply_parts = []
            self.reply(model, self.pending)

        question = error_text(refusal).append("\n\nChat with it anyway?", style="bold")
        self.app.push_screen(ConfirmScreen(question, yes="Chat anyway", no="Cancel"), answered)
