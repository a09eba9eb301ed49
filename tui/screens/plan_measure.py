"""The plan step's "Measure" action: ``ftwiz plan --probe`` from the wizard, measured next to estimated.

The probe runs a few real training steps in a child process (``ftwiz.core.planner.probe``); here a thread
worker waits for it so the screen stays live, and each attempt of the batch search is shown as it ends.
The measured plan replaces the estimated one, so Train runs what was measured.
"""

from __future__ import annotations

from typing import Any

from ftwiz.tui.widgets.memory_gauge import human_bytes
from rich.table import Table
from rich.text import Text
from textual import work
from textual.widgets import Button, Static
from textual.worker import Worker, WorkerState

GROUP = "probe"


def render_measured(report: Any) -> Table:
    """Measured vs estimated for the chosen setting, then every attempt of the search."""
    m = report.chosen
    table = Table(title="measured on this machine", title_justify="left", expand=True)
    table.add_column("what")
    table.add_column("measured", justify="right")
    table.add_column("estimated", justify="right")
    table.add_row("peak", human_bytes(m.peak_bytes), human_bytes(m.estimate_bytes) if m.estimate_bytes else "-")
    if "runtime" in m.parts:  # CPU: the estimate covers the model and training, not Python and its libraries
        table.add_row("  less the runtime", human_bytes(m.peak_bytes - m.parts["runtime"]),
                      human_bytes(m.estimate_bytes) if m.estimate_bytes else "-")
    for name, size in m.parts.items():
        table.add_row(f"  {name.replace('_', ' ')}", human_bytes(size), "")
    table.add_row("tokens/s", f"{m.tokens_per_s:.0f}" if m.tokens_per_s else "-", "")
    for note in report.notes:
        table.add_row(Text(note, style="dim"), "", "")
    return table


class MeasureMixin:
    """For PlanScreen: a Measure button, the probe worker and its result."""

    report: Any = None

    def measure_button(self) -> Button:
        return Button("Measure", id="measure", tooltip="run a few real training steps and compare with the estimate")

    def start_measure(self) -> None:
        if self.plan is None:
            self.show_error("the plan is not ready yet")
            return
        self.query_one("#measure", Button).disabled = True
        self.query_one("#measured", Static).update(Text(
            "measuring: a few training steps in a child process (the model loads first)...", style="italic"))
        self.run_probe(self.plan)

    @work(thread=True, exclusive=True, group=GROUP, exit_on_error=False)
    def run_probe(self, plan: Any) -> Any:
        from ftwiz.core.models import resolve_model
        from ftwiz.core.planner import load_model_spec
        from ftwiz.core.planner.measured import model_key
        from ftwiz.core.planner.probe import probe_plan

        recipe = self.wizard.load_recipe()
        lengths = self.lengths(recipe)
        model_dir = resolve_model(recipe.model_name_or_path, revision=recipe.revision)
        status = self.query_one("#measured", Static)

        def attempt_done(m: Any) -> None:
            line = (f"measured micro-batch {m.micro_batch}: "
                    + ("out of memory" if m.oom else f"{human_bytes(m.peak_bytes)}") + ", searching...")
            self.app.call_from_thread(status.update, Text(line, style="italic"))

        return probe_plan(
            plan, recipe=recipe, spec=load_model_spec(model_dir), model_dir=model_dir,
            model_key=model_key(recipe.model_name_or_path, recipe.revision), hardware=self.wizard.state.hardware,
            synthetic=lengths is None,
            epoch_tokens=sum(min(n, plan.max_seq_len) for n in lengths) if lengths else None,
            on_attempt=attempt_done)

    def measured(self, event: Worker.StateChanged) -> bool:
        """Handle the probe worker's end; True when the event was the probe's."""
        if event.worker.group != GROUP:
            return False
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return True
        self.query_one("#measure", Button).disabled = False
        if event.state != WorkerState.SUCCESS:
            self.query_one("#measured", Static).update("")
            self.show_error(event.worker.error or "the measurement did not finish")
            return True
        self.report = event.worker.result
        self.show_plan(self.report.plan)
        self.query_one("#measured", Static).update(render_measured(self.report))
        return True
