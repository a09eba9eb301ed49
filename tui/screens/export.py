"""Step 6, export: merge, convert to GGUF, quantize and verify, in a child process
(``ftwiz export RUN --quant Q --verify --events -``) whose progress events drive a bar per stage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from ftwiz.core.quant_types import COMMON_QUANTS
from ftwiz.tui.screens.base import WizardScreen
from ftwiz.tui.screens.train import stop_job
from ftwiz.tui.widgets.event_log import EventLog
from ftwiz.tui.worker import ChildJob
from ftwiz.tui.worker_messages import ChildEvent, ChildExited, ChildLine, ChildOutput, start_child
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Button, Label, ProgressBar, Select, Static


def quant_choices(recipe_quants: list[str]) -> list[str]:
    """The recipe's quantizations first (its author's advice), then the common ones."""
    seen: list[str] = []
    for quant in [*recipe_quants, *COMMON_QUANTS]:
        if quant not in seen:
            seen.append(quant)
    return seen


class ExportScreen(WizardScreen):
    STEP = "export"
    NEXT = "deploy"

    def __init__(self) -> None:
        super().__init__()
        self.job: ChildJob | None = None
        self.output: str | None = None
        self.got_final = False
        self.tail: deque[str] = deque(maxlen=5)

    def compose_body(self) -> Iterable[Widget]:
        recipe = self.wizard.load_recipe()
        choices = quant_choices(list(recipe.export_quant))
        yield Label(f"Run: {self.wizard.state.run_name or '(none: train first)'}   Quantization:")
        yield Select([(q, q) for q in choices], value=choices[0], allow_blank=False, id="quant")
        yield Static("", id="stage")
        yield ProgressBar(total=1, id="progress", show_eta=False)
        yield EventLog(id="log")

    def compose_actions(self) -> Iterable[Widget]:
        yield Button("Export", id="export", variant="success")
        yield from super().compose_actions()

    def on_mount(self) -> None:
        self.query_one("#next", Button).disabled = True
        self.query_one("#export", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            event.stop()
            self.start()

    def start(self) -> None:
        run = self.wizard.state.run_name
        if not run:
            self.show_error("no trained run yet: go back (Esc) and train first")
            return
        if self.job is not None and self.job.running:
            return
        quant = str(self.query_one("#quant", Select).value)
        self.show_error(None)
        self.got_final = False
        self.query_one("#export", Button).disabled = True
        self.query_one("#stage", Static).update(f"exporting {run} as {quant}...")
        self.job = start_child(self, self.wizard.export_command(run, quant))

    def on_child_output(self, message: ChildOutput) -> None:
        message.dispatch_to(self)

    def child_event(self, message: ChildEvent) -> None:
        event: Any = message.event
        self.query_one(EventLog).write_event(event)
        if event.type == "progress":
            self.query_one("#stage", Static).update(Text(f"{event.stage}: {event.message}".rstrip(": ")))
            self.query_one("#progress", ProgressBar).update(total=event.total or None, progress=event.done)
        elif event.type == "finished":
            self.got_final = True
            self.output = event.output_path
            self.wizard.state.gguf_path = event.output_path
            self.query_one("#stage", Static).update(Text(f"exported: {event.output_path}", style="bold green"))
            log = self.query_one(EventLog)
            for check in event.summary.get("checks", []):  # the verification report, check by check
                mark = {True: ("pass", "green"), False: ("FAIL", "bold red"), None: ("info", "cyan")}[check["passed"]]
                log.write(Text.assemble((f"  {mark[0]} ", mark[1]), f"{check['name']}: {check['detail']}"))
            for note in event.summary.get("notes", []):  # e.g. tensors llama.cpp's rules give another type
                log.write(Text.assemble(("  note ", "yellow"), note))
            self.query_one("#next", Button).disabled = event.status != "completed" or not event.output_path
            self.query_one("#next", Button).focus()
        elif event.type == "failed":
            self.got_final = True
            self.show_error(event.reason + (f"\nfix: {event.fix}" if event.fix else ""))

    def child_line(self, message: ChildLine) -> None:
        self.tail.append(message.line)
        self.query_one(EventLog).write_raw(message.line)

    def child_exited(self, message: ChildExited) -> None:
        self.query_one("#export", Button).disabled = False
        if not self.got_final:
            tail = "\n".join(self.tail)
            self.show_error(f"the export process stopped without a result (exit code {message.returncode})"
                            + (f"\n{tail}" if tail else ""))

    def can_continue(self) -> bool:
        return bool(self.wizard.state.gguf_path)

    def action_next(self) -> None:
        """Ctrl+N accepts the defaults, as the first screen says: before there is a GGUF it exports (it did
        nothing, silently, while Continue was disabled)."""
        if not self.can_continue():
            self.start()
            return
        super().action_next()

    def on_unmount(self) -> None:
        stop_job(self.job, finished=self.got_final)
