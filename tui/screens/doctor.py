"""Step 1, welcome and doctor: what this machine has, what to fix, and an offer to resume a stopped run.

Detection spawns subprocesses (bitsandbytes, llama.cpp, Ollama checks) and may take seconds, so it runs
in a thread worker; the screen is interactive immediately and fills in when the report arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftwiz.tui.screens.base import WizardScreen
from ftwiz.tui.widgets.memory_gauge import human_bytes
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, LoadingIndicator, Static
from textual.worker import Worker, WorkerState

WELCOME = (
    "ftwiz fine-tunes a language model on this machine and lets you chat with it offline. "
    "Accept the defaults (Enter on Continue, or Ctrl+N) to run the built-in demo end to end."
)
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_report(report: Any) -> Group:
    """The hardware report as the doctor CLI shows it, compacted for an 80-column terminal."""
    gpus = Table(title="GPUs", title_justify="left", expand=True)
    for column in ("#", "name", "VRAM", "free", "bf16"):
        gpus.add_column(column, no_wrap=column != "name")
    for gpu in report.gpus:
        gpus.add_row(str(gpu.index), gpu.name, human_bytes(gpu.total_bytes), human_bytes(gpu.free_bytes),
                     "yes" if gpu.bf16 else "no")
    if not report.gpus:
        gpus.add_row("-", "no GPU found: training runs on the CPU (fine for the demo)", "-", "-", "-")
    system = Table(show_header=False, box=None, expand=True)
    system.add_column("what", style="bold", no_wrap=True)
    system.add_column("value")
    system.add_row("device", report.device)
    system.add_row("torch", report.torch_version or "not installed")
    system.add_row("CPU", f"{report.cpu_model} ({report.cpu_cores} threads)")
    system.add_row("RAM", f"{human_bytes(report.ram_available_bytes)} free of {human_bytes(report.ram_total_bytes)}")
    for where, free in report.disk_free_bytes.items():  # models, checkpoints and GGUFs need room
        system.add_row("disk", f"{human_bytes(free)} free ({where})")
    for backend in report.backends:
        status = Text("ok", style="green") if backend.ok else Text("unavailable", style="red")
        detail = (backend.version or "") if backend.ok else (backend.detail or "")
        system.add_row(backend.name, status + Text(f" {detail}"))
    problems = Text()
    for problem in report.problems:
        problems.append(f"{problem.severity}: ", style=SEVERITY_STYLE[problem.severity])
        problems.append(f"{problem.what}\n")
        problems.append(f"  fix: {problem.fix}\n", style="green")
    if not any(p.severity == "error" for p in report.problems):
        problems.append("ready: nothing blocks fine-tuning on this machine", style="bold green")
    return Group(gpus, system, problems)


def resumable_runs() -> list[tuple[str, str, int]]:
    """Runs that stopped before finishing and kept a checkpoint: (name, state, last step)."""
    from ftwiz.core.rundir import list_runs

    found = []
    for run in list_runs():
        try:
            state = run.state()
        except Exception:  # noqa: BLE001 - a torn status.json must not stop the wizard from opening
            continue
        steps = run.checkpoint_steps()
        if state in {"cancelled", "running", "failed"} and steps:
            found.append((run.name, state, steps[-1]))
    return found


class DoctorScreen(WizardScreen):
    STEP = "doctor"
    NEXT = "model"

    def __init__(self) -> None:
        super().__init__()
        self.report: Any = None
        self.resume_name: str | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield Static(WELCOME, id="welcome")
        with Horizontal(id="resume-offer", classes="hidden"):
            yield Static("", id="resume-text")
            yield Button("Resume", id="resume", variant="warning")
            yield Button("Dismiss", id="dismiss-resume")
        yield LoadingIndicator(id="detecting")
        yield Static("", id="report")

    def on_mount(self) -> None:
        if self.wizard.state.hardware is not None:
            self._show(self.wizard.state.hardware)
        else:
            self.detect()
        if self.wizard.offer_resume:
            self._offer_resume()
        self.query_one("#next", Button).focus()

    @work(thread=True, exclusive=True, group="doctor", exit_on_error=False)
    def detect(self) -> Any:
        return self.wizard.hardware_loader()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "doctor":
            return
        if event.state == WorkerState.SUCCESS:
            self.wizard.state.hardware = event.worker.result
            self._show(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#detecting").display = False
            self.show_error(event.worker.error or "hardware detection failed")

    def _show(self, report: Any) -> None:
        self.report = report
        self.query_one("#detecting").display = False
        self.query_one("#report", Static).update(render_report(report))

    def _offer_resume(self) -> None:
        runs = resumable_runs()
        if not runs:
            return
        name, state, step = runs[-1]
        self.query_one("#resume-text", Static).update(
            Text.assemble(("Unfinished run ", ""), (name, "bold"), (f" ({state}, checkpoint at step {step}).", "")))
        self.resume_name = name
        self.query_one("#resume-offer").remove_class("hidden")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "resume" and self.resume_name:
            event.stop()
            self.wizard.state.resume = self.resume_name
            self.wizard.state.run_name = self.resume_name
            self.wizard.goto("train")
        elif event.button.id == "dismiss-resume":
            event.stop()
            self.query_one("#resume-offer").add_class("hidden")
