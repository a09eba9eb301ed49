"""Step 4, plan: what fits and why. Shows the planner's choices, the memory estimate by part against
the budget, and its reasons in words, before any training starts.

The planner reads the model's config.json and the hardware report; it may build the demo model or scan
the dataset, so it runs in a thread worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftwiz.tui.screens.base import WizardScreen
from ftwiz.tui.screens.plan_measure import MeasureMixin
from ftwiz.tui.widgets.memory_gauge import MemoryGauge, human_bytes
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, LoadingIndicator, Static
from textual.worker import Worker, WorkerState


def peak_of(plan: Any) -> int | None:
    estimate = getattr(plan, "estimate", None) or getattr(plan, "memory", None)
    if estimate is None:
        return None
    return getattr(estimate, "peak_bytes", None) or getattr(estimate, "total_bytes", None)


def render_plan(plan: Any) -> Group:
    """The plan's knobs, the memory parts largest first, then the reasons and warnings."""
    knobs = Table(show_header=False, box=None, expand=True)
    knobs.add_column("knob", style="bold", no_wrap=True)
    knobs.add_column("value")
    knobs.add_row("method", f"{plan.method} on {getattr(plan, 'device', '?')}")
    knobs.add_row("batch", f"micro-batch {plan.micro_batch} x {plan.grad_accum} accumulation")
    knobs.add_row("max length", f"{getattr(plan, 'max_seq_len', None) or getattr(plan, 'max_length', '?')} tokens")
    if plan.lora_rank:
        knobs.add_row("LoRA rank", str(plan.lora_rank))
    knobs.add_row("optimizer", f"{plan.optimizer}, {plan.dtype}, checkpointing "
                  f"{'on' if plan.gradient_checkpointing else 'off'}")
    measured = getattr(plan, "measured", None)
    if measured is not None:  # a probe of this setting on this machine (Measure, or `ftwiz plan --probe`)
        speed = f", {measured.tokens_per_s:.0f} tokens/s" if measured.tokens_per_s else ""
        knobs.add_row("measured", f"{human_bytes(measured.peak_bytes)} peak (estimated "
                      f"{human_bytes(measured.estimate_bytes or peak_of(plan))}){speed}")
    parts = Table(title="memory by part", title_justify="left", expand=True)
    parts.add_column("part")
    parts.add_column("bytes", justify="right")
    estimate = getattr(plan, "estimate", None) or getattr(plan, "memory", None)
    for name, size in sorted((estimate.parts if estimate else {}).items(), key=lambda kv: -kv[1]):
        if size:
            parts.add_row(name.replace("_", " "), human_bytes(size))
    words = Text()
    for reason in plan.reasons:
        words.append(f"• {reason}\n")
    for warning in getattr(plan, "warnings", []):
        words.append(f"! {warning}\n", style="yellow")
    if not plan.fits:
        words.append("This plan does not fit in memory: pick a smaller model or shorter samples.\n", style="bold red")
    return Group(knobs, parts, words)


class PlanScreen(MeasureMixin, WizardScreen):
    STEP = "plan"
    NEXT = "train"
    NEXT_LABEL = "Train"

    # Recipe fields the user may change here; the plan is recomputed as they type (debounced).
    EDITABLE = (("cutoff_len", "max length"), ("lora_rank", "LoRA rank"),
                ("per_device_train_batch_size", "micro-batch"))
    DEBOUNCE_S = 0.4

    def __init__(self) -> None:
        super().__init__()
        self.plan: Any = None
        self._debounce: Timer | None = None

    def compose_body(self) -> Iterable[Widget]:
        recipe = self.wizard.load_recipe()
        with Horizontal(id="plan-edit", classes="row"):
            for field, label in self.EDITABLE:
                value = getattr(recipe, field)
                yield Label(f"{label}:")
                yield Input("" if value is None else str(value), id=field, type="integer", placeholder="auto")
        yield MemoryGauge("memory", id="gauge")
        yield LoadingIndicator(id="planning")
        yield Static("", id="plan")
        yield Static("", id="measured")

    def compose_actions(self) -> Iterable[Widget]:
        yield self.measure_button()
        yield from super().compose_actions()

    # Not an on_button_pressed override calling super(): Textual already calls every class's handler along
    # the MRO, so the base's Next handler ran twice and Train started two runs in one folder.
    @on(Button.Pressed, "#measure")
    def measure_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.start_measure()

    def on_mount(self) -> None:
        self.query_one("#next").focus()
        self.make_plan()

    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        if event.input.id not in {field for field, _label in self.EDITABLE}:
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(self.DEBOUNCE_S, self._apply_edits)

    def _apply_edits(self) -> None:
        """Put the edited values into the recipe (validated by its schema) and plan again."""
        from pydantic import ValidationError

        recipe = self.wizard.load_recipe()
        changes: dict[str, int | None] = {}
        for field, _label in self.EDITABLE:
            text = self.query_one(f"#{field}", Input).value.strip()
            value = int(text) if text.lstrip("-").isdigit() else None
            if field == "cutoff_len" and value is None:
                value = recipe.cutoff_len
            if value != getattr(recipe, field):
                changes[field] = value
        if not changes:
            return
        try:
            # Only what the user set counts as set: the planner keeps choosing the rest.
            edited = type(recipe).model_validate({**recipe.model_dump(exclude_unset=True), **changes})
        except ValidationError as exc:
            problem = exc.errors()[0]
            self.show_error(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}")
            return
        self.show_error(None)
        self.wizard.state.recipe = edited
        self.plan = None
        self.query_one("#planning").display = True
        self.make_plan()

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def make_plan(self) -> Any:
        from ftwiz.core.step_plan import plan_job

        recipe = self.wizard.load_recipe()
        return plan_job(recipe, self.wizard.state.hardware, dataset_lengths=self.lengths(recipe))

    def lengths(self, recipe) -> list[int] | None:
        """The training split's token lengths: the data step's measurement, or measured now as `train` would
        (so the wizard and `ftwiz train` plan the same job alike)."""
        from ftwiz.core.errors import FtwizError
        from ftwiz.core.recipe_inputs import lengths_key, training_lengths

        cached = self.wizard.state.dataset_lengths
        key = lengths_key(recipe)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            lengths = training_lengths(recipe)
        except FtwizError:
            return None  # the data step reports data problems; the plan then uses cutoff_len
        self.wizard.state.dataset_lengths = (key, lengths)
        return lengths

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if self.measured(event):
            return
        if event.worker.group != "plan" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.query_one("#planning").display = False
        if event.state == WorkerState.ERROR:
            self.show_error(event.worker.error or "planning failed")
            return
        self.show_plan(event.worker.result)

    def show_plan(self, plan: Any) -> None:
        self.plan = self.wizard.state.plan = plan
        estimate = getattr(self.plan, "estimate", None) or getattr(self.plan, "memory", None)
        self.query_one("#gauge", MemoryGauge).update_usage(peak_of(self.plan),
                                                           getattr(estimate, "budget_bytes", None))
        self.query_one("#plan", Static).update(render_plan(self.plan))

    def can_continue(self) -> bool:
        if self.plan is None:
            self.show_error("the plan is not ready yet")
            return False
        if not self.plan.fits:
            self.show_error("this plan does not fit in memory; go back (Esc) and pick a smaller model")
            return False
        return True
