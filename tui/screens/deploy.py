"""Step 7, deploy: make the exported GGUF usable outside ftwiz (Ollama, an OpenAI-compatible llama.cpp
server) and show copy-ready snippets. Registration talks to Ollama over HTTP, so it runs in a thread
worker; serving starts llama.cpp bound to 127.0.0.1. Both go through the core functions the CLI calls, so a GGUF
whose ``export --verify`` failed is refused here too; the wizard then asks whether to go on anyway (the CLI's
``--force``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftwiz.tui.screens.base import WizardScreen
from rich.text import Text
from textual import work
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState


def snippets(gguf: str, ollama_name: str | None, base_url: str | None = None) -> Text:
    """Commands a user can paste elsewhere to use the model."""
    text = Text("Use it outside the wizard:\n", style="bold")
    text.append(f"  ftwiz chat {gguf}\n")
    text.append(f"  ftwiz serve {gguf}\n")
    if ollama_name:
        text.append(f"  ollama run {ollama_name}\n")
    if base_url:
        text.append(f"  curl {base_url}/chat/completions -H 'Content-Type: application/json' \\\n"
                    "    -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'\n")
    return text


class DeployScreen(WizardScreen):
    STEP = "deploy"
    NEXT = "chat"
    NEXT_LABEL = "Chat here"

    def __init__(self) -> None:
        super().__init__()
        self.server: Any = None

    def compose_body(self) -> Iterable[Widget]:
        recipe = self.wizard.load_recipe()
        gguf = self.wizard.state.gguf_path or "(no GGUF yet: export first)"
        yield Static(Text.assemble(("model: ", "bold"), gguf), id="gguf")
        yield Label("Ollama name (optional; Ollama must be running):")
        with Horizontal(classes="row"):
            yield Input(recipe.ollama_name or "", id="ollama-name", placeholder="my-model")
            yield Button("Register", id="register")
        yield Button("Serve with llama.cpp", id="serve")
        yield Static("", id="deploy-status")
        yield Static("", id="serve-status")
        # `ollama run NAME` is offered only once NAME really is registered (after Register succeeds)
        yield Static(snippets(self.wizard.state.gguf_path or "MODEL.gguf", None), id="snippets")

    def on_mount(self) -> None:
        self.query_one("#next", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        gguf = self.wizard.state.gguf_path
        if event.button.id in ("register", "serve"):
            event.stop()
            if not gguf:
                self.show_error("export a GGUF first (Esc to go back)")
                return
            self.show_error(None)
            if event.button.id == "register":
                name = self.query_one("#ollama-name", Input).value.strip()
                if not name:
                    self.show_error("give the model a name for Ollama, e.g. my-model")
                    return
                self.query_one("#deploy-status", Static).update(f"registering {name} with Ollama...")
                self.register(gguf, name)
            else:
                self.query_one("#serve-status", Static).update("starting the llama.cpp server...")
                self.serve(gguf)

    @work(thread=True, exclusive=True, group="deploy", exit_on_error=False)
    def register(self, gguf: str, name: str, force_unverified: bool = False) -> Any:
        from ftwiz.core.deploy.register_step import register_inputs, register_model

        # as `ftwiz register` does: a run's GGUF takes its run's recipe; another GGUF the wizard's
        inputs = register_inputs(gguf, name=name, recipe=self.wizard.load_recipe())
        status = self.query_one("#deploy-status", Static)
        # Registration reports its stages (upload, create, smoke test); show each as it happens.
        return register_model(inputs, overwrite=True, force_unverified=force_unverified,
                              on_status=lambda text: self.app.call_from_thread(status.update, text))

    @work(thread=True, exclusive=True, group="deploy", exit_on_error=False)
    def serve(self, gguf: str, force_unverified: bool = False) -> Any:
        from ftwiz.core.deploy.serve_step import serve_inputs
        from ftwiz.core.deploy.server import start_server

        # as `ftwiz serve` does: a GGUF whose `export --verify` failed is refused (then asked), same context rule
        inputs = serve_inputs(gguf, force_unverified=force_unverified)
        return start_server(inputs.gguf, n_ctx=inputs.context.n_ctx), inputs.context

    def _ask_anyway(self, step: str, refusal: BaseException) -> None:
        """The wizard's ``--force``: the refusal is shown as the CLI says it, and ``step`` (register or serve) runs
        on the same GGUF only if the user says so (Enter and Esc keep it refused)."""
        from ftwiz.tui.screens.base import error_text
        from ftwiz.tui.screens.confirm import ConfirmScreen

        gguf, verb = self.wizard.state.gguf_path, "Register" if step == "register" else "Serve"
        question = error_text(refusal).append(f"\n\n{verb} it anyway?", style="bold")

        def answered(anyway: bool | None) -> None:
            if not anyway or not gguf:
                return
            self.show_error(None)
            if step == "register":
                name = self.query_one("#ollama-name", Input).value.strip()
                self.query_one("#deploy-status", Static).update(f"registering {name} with Ollama...")
                self.register(gguf, name, force_unverified=True)
            else:
                self.query_one("#serve-status", Static).update("starting the llama.cpp server...")
                self.serve(gguf, force_unverified=True)

        self.app.push_screen(ConfirmScreen(question, yes=f"{verb} anyway", no="Cancel"), answered)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "deploy" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        # Register and Serve report on separate lines: a failed registration must not hide a running server.
        status = self.query_one("#deploy-status" if event.worker.name == "register" else "#serve-status", Static)
        gguf = self.wizard.state.gguf_path or "MODEL.gguf"
        if event.state == WorkerState.ERROR:
            from ftwiz.core.export.verify_record import VerifyFailedRefusal

            status.update("")
            self.show_error(event.worker.error or "deploy failed")
            if isinstance(event.worker.error, VerifyFailedRefusal):  # the CLI's --force, as a question
                self._ask_anyway(event.worker.name, event.worker.error)
            return
        result = event.worker.result
        if event.worker.name == "register":
            text = Text(f"registered in Ollama as {result.name} ({result.family} template, stops: "
                        f"{', '.join(result.stops)})", style="bold green")
            if result.smoke is not None:
                text.append(f"\nsmoke test: {result.smoke.answer[:120]!r} (stopped: {result.smoke.done_reason})",
                            style="")
            status.update(text)
            self.query_one("#snippets", Static).update(snippets(gguf, result.name))
        else:
            from ftwiz.core.deploy.server import snippets as server_snippets

            self.server, context = result
            status.update(Text(f"serving {self.server.model_alias} at {self.server.base_url} (Esc stops it)\n"
                               f"context {context.n_ctx} tokens ({context.reason})", style="bold green"))
            text = snippets(gguf, None, self.server.base_url)
            text.append("\n" + server_snippets(self.server)["openai"] + "\n", style="")
            self.query_one("#snippets", Static).update(text)

    def on_unmount(self) -> None:
        stop = getattr(self.server, "stop", None)
        if callable(stop):
            stop()
