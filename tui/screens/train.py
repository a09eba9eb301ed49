"""Step 5, train: runs ``ftwiz train RECIPE --events -`` as a child process and shows it live.

The loss chart, the step and memory gauges and the event log are fed by the child's JSON event stream,
so a crash or out-of-memory kill in training leaves the wizard standing and says what happened.
Cancel asks first, then sends SIGINT: the trainer saves a checkpoint and reports ``cancelled``, and the
screen offers to resume from it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from ftwiz.core.rate import RateWindow
from ftwiz.tui.screens.base import WizardScreen
from ftwiz.tui.widgets.event_log import EventLog
from ftwiz.tui.widgets.memory_gauge import MemoryGauge
from ftwiz.tui.worker import ChildJob
from ftwiz.tui.worker_messages import ChildEvent, ChildExited, ChildLine, ChildOutput, start_child
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, ProgressBar, Static

STDERR_TAIL = 20  # lines of stderr kept to explain a child that died without a `failed` event
# Step events can arrive faster than a terminal can usefully redraw (a tiny model on CPU: ~100/s).
# Widgets are refreshed from the latest step at this rate, so key presses never queue behind redraws.
REFRESH_S = 0.2


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def step_line(event: Any, rate: Any = None) -> Text:
    """``step 12/40  loss 1.234  lr 2.0e-04  512 tok/s  ETA 0:42`` for the stats line.

    With ``rate`` (a :class:`ftwiz.core.rate.RateWindow`) tokens/s and ETA come from the same smoothed
    window, so they agree and do not jump; until it has measured, both say "measuring".
    """
    loss = (f"{event.loss:.4f}", "bold") if event.loss is not None else ("not finite", "bold red")  # diverged
    text = Text.assemble(("step ", "dim"), (f"{event.step}/{event.total_steps}", "bold"),
                         ("  loss ", "dim"), loss, ("  lr ", "dim"), f"{event.lr:.1e}")
    if rate is None:
        tokens, eta = event.tokens_per_s, event.eta_s
    else:
        tokens, eta = rate.tokens_per_s, rate.eta_s(event.step, event.total_steps)
    if tokens:
        text.append(f"  {tokens:,.0f} tok/s")
    text.append(f"  ETA {format_eta(eta) if eta is not None else 'measuring...'}")
    return text


def preference_line(event: Any) -> Text | None:
    """``rewards chosen +0.12  rejected -0.34  margin +0.46  accuracy 75%`` for dpo/orpo/kto steps (TRL's
    rewards/* logs); None for a step that carries none (sft, pt)."""
    figures = (("rewards chosen ", event.rewards_chosen, "{:+.4f}"), ("rejected ", event.rewards_rejected, "{:+.4f}"),
               ("margin ", event.rewards_margins, "{:+.4f}"), ("accuracy ", event.rewards_accuracy, "{:.0%}"))
    if all(value is None for _name, value, _fmt in figures):
        return None
    text = Text()
    for name, value, fmt in figures:
        if value is not None:
            text.append(("  " if text else "") + name, style="dim")
            text.append(fmt.format(value), style="bold")
    return text


def write_wizard_recipe(recipe: Any) -> Path:
    """The recipe as the wizard resolved it, in the cache, for the child to read (written atomically)."""
    from ftwiz.core.atomic import write_text_atomic
    from ftwiz.core.paths import cache_dir, safe_name
    from ftwiz.core.recipe import dump_recipe
    from ftwiz.core.rundir import next_free_run_name

    # a name no run uses yet, so Train always starts a new run (an unfinished run is continued through
    # the explicit Resume offer, never by a name collision)
    name = next_free_run_name(safe_name(recipe.run_name or Path(recipe.model_name_or_path).name or "run"))
    recipe = recipe.model_copy(update={"run_name": name})
    path = cache_dir() / "wizard" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "# written by the ftwiz wizard\n" + dump_recipe(recipe), overwrite=True)
    return path


class TrainScreen(WizardScreen):
    STEP = "train"
    NEXT = "export"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_run", "Cancel run"),
        Binding("r", "resume_run", "Resume"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job: ChildJob | None = None
        self.status = "starting"  # starting | running | completed | cancelled | failed
        self.total_steps = 0
        self.run_dir: str | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.got_final = False
        self._latest_step: Any = None
        self.rate = RateWindow()  # tokens/s and ETA from one smoothed window
        self.job_cancelling = False
        self.resume_when_exited = False

    def compose_body(self) -> Iterable[Widget]:
        from ftwiz.tui.widgets.loss_chart import LossChart  # plotext only when this screen opens

        yield Static("", id="status-line")
        yield Static("", id="pref-line", classes="hidden")  # preference stages: rewards, margin, accuracy
        with Horizontal(id="gauges"):
            yield ProgressBar(total=1, id="steps", show_eta=False)
            yield MemoryGauge("memory", id="memory")
        yield LossChart(id="loss")
        yield EventLog(id="log")

    def compose_actions(self) -> Iterable[Widget]:
        yield Button("Cancel run", id="cancel", variant="error")
        yield Button("Resume", id="resume", variant="warning", classes="hidden")
        yield from super().compose_actions()

    def on_mount(self) -> None:
        self.query_one("#next", Button).disabled = True
        self.set_interval(REFRESH_S, self._refresh_live)
        self.start(resume=self.wizard.state.resume)

    # --- the child ---------------------------------------------------------------------------------

    def start(self, resume: str | None = None) -> None:
        """Start (or resume) training in a child process."""
        from ftwiz.core.errors import FtwizError

        state = self.wizard.state
        try:
            if resume:
                from ftwiz.core.rundir import RunDir

                recipe_path = RunDir.resolve(resume).recipe
            else:
                recipe_path = write_wizard_recipe(self.wizard.load_recipe())
        except FtwizError as exc:
            self._set_status("failed")
            self.show_error(exc)
            return
        command = self.wizard.train_command(recipe_path, resume)
        self.show_error(None)
        self.got_final = False
        self.job_cancelling = False
        self.stderr_tail.clear()
        self._set_status("running", "starting training..." if not resume else f"resuming {resume}...")
        self.job = start_child(self, command)
        state.resume = None

    def on_child_output(self, message: ChildOutput) -> None:
        message.dispatch_to(self)

    def child_event(self, message: ChildEvent) -> None:
        event = message.event
        log = self.query_one(EventLog)
        log.write_event(event)
        kind = event.type
        if kind == "started":
            self.rate.reset()
            if event.resumed_from_step:
                self._load_history(event.run_dir, event.resumed_from_step)
            self.run_dir = event.run_dir
            self.wizard.state.run_name = Path(event.run_dir).name
            self.total_steps = event.total_steps
            self.query_one("#steps", ProgressBar).update(total=event.total_steps, progress=event.resumed_from_step)
            resumed = f", resumed from step {event.resumed_from_step}" if event.resumed_from_step else ""
            self._set_status("running", f"training {Path(event.run_dir).name}: {event.method} on {event.device}"
                             f"{resumed}")
        elif kind == "step":
            from ftwiz.tui.widgets.loss_chart import LossChart

            self.query_one(LossChart).add_step(event.step, event.loss)
            self.rate.add(event)
            self._latest_step = event
        elif kind == "eval":
            from ftwiz.tui.widgets.loss_chart import LossChart

            self.query_one(LossChart).add_eval(event.step, event.loss)
        elif kind == "finished":
            self.got_final = True
            self._refresh_live()  # the last step's numbers before the verdict, not a timer tick later
            self._set_status(event.status, f"training {event.status}"
                             + (f": {event.output_path}" if event.output_path else ""))
        elif kind == "failed":
            self.got_final = True
            self._set_status("failed", "training failed")
            self.show_error(f"{event.reason}" + (f"\nfix: {event.fix}" if event.fix else ""))

    def _refresh_live(self) -> None:
        """Show the latest step (timer-driven: at most one redraw per REFRESH_S, however fast steps come)."""
        from ftwiz.tui.widgets.loss_chart import LossChart

        self.query_one(LossChart).redraw_if_due()
        event, self._latest_step = self._latest_step, None
        if event is None:
            return
        self.query_one("#steps", ProgressBar).update(total=event.total_steps, progress=event.step)
        if self.status == "running" and not self.job_cancelling:
            # The status line is one line tall (CSS): repaint only, no layout pass, on every refresh.
            self.query_one("#status-line", Static).update(step_line(event, self.rate), layout=False)
        figures = preference_line(event)
        if figures is not None:
            line = self.query_one("#pref-line", Static)
            line.update(figures, layout=line.has_class("hidden"))
            line.remove_class("hidden")
        gpu_used = event.mem_peak_bytes or event.mem_device_used_bytes
        used = gpu_used or event.rss_bytes
        self.query_one("#memory", MemoryGauge).update_usage(used, self._memory_total(on_gpu=bool(gpu_used)))

    def _load_history(self, run_dir: str, resumed_from: int) -> None:
        """A run resumed in a new wizard session: its steps before the checkpoint, from events.jsonl, so
        the chart shows the whole run, not only what came after the resume."""
        from ftwiz.core.events import read_events
        from ftwiz.tui.widgets.loss_chart import LossChart

        chart = self.query_one(LossChart)
        if chart.steps:  # resumed in this session: the chart already has them
            return
        path = Path(run_dir) / "events.jsonl"
        try:
            events = list(read_events(path)) if path.is_file() else []
        except OSError:
            return
        for old in events:
            if old.type == "step" and old.step <= resumed_from:
                chart.add_step(old.step, old.loss)
            elif old.type == "eval" and old.step <= resumed_from:
                chart.add_eval(old.step, old.loss)

    def child_line(self, message: ChildLine) -> None:
        self.stderr_tail.append(message.line)
        self.query_one(EventLog).write_raw(message.line)

    def child_exited(self, message: ChildExited) -> None:
        self._refresh_live()
        if self.resume_when_exited and self.got_final and self.run_dir:
            self.resume_when_exited = False
            self.start(resume=Path(self.run_dir).name)
            return
        from ftwiz.tui.widgets.loss_chart import LossChart

        self.query_one(LossChart).flush()
        if not self.got_final:
            # Killed (OOM killer, segfault) or crashed before it could report: say so, with its last words.
            tail = "\n".join(list(self.stderr_tail)[-5:])
            self._set_status("failed", f"training process exited with code {message.returncode}")
            self.show_error(f"the training process stopped without a result (exit code {message.returncode})"
                            + (f"\n{tail}" if tail else ""))

    def _memory_total(self, *, on_gpu: bool) -> int | None:
        """What the used memory is measured against: the GPU's VRAM for CUDA numbers, else the RAM."""
        hardware = self.wizard.state.hardware
        if hardware is None:
            return None
        if on_gpu and hardware.gpus:
            return max(gpu.total_bytes for gpu in hardware.gpus)
        return hardware.ram_total_bytes or None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers Cancel only while training runs, Resume only after a stop."""
        if action == "cancel_run":
            return self.status in ("starting", "running")
        if action == "resume_run":
            return self.status in ("cancelled", "failed") and self.run_dir is not None
        return super().check_action(action, parameters)

    def _set_status(self, status: str, text: str = "") -> None:
        self.status = status
        self.refresh_bindings()
        styles = {"completed": "bold green", "cancelled": "bold yellow", "failed": "bold red"}
        if text:
            self.query_one("#status-line", Static).update(Text(text, style=styles.get(status, "")))
        running = status in ("starting", "running")
        self.query_one("#cancel", Button).display = running
        self.query_one("#resume", Button).set_class(not (status in ("cancelled", "failed") and self.run_dir),
                                                     "hidden")
        self.query_one("#next", Button).disabled = status != "completed"
        if status == "completed":
            self.query_one("#next", Button).focus()

    # --- actions -----------------------------------------------------------------------------------

    def action_cancel_run(self) -> None:
        if self.job is None or not self.job.running:
            return

        def answered(yes: bool | None) -> None:
            if yes and self.job is not None and self.job.cancel():
                self.job_cancelling = True
                self._set_status("running", "stopping after this step: saving a checkpoint...")

        from ftwiz.tui.screens.confirm import ConfirmScreen

        # The user pressed c (or the button) to cancel: Enter confirms it; n or Esc keeps training.
        self.app.push_screen(ConfirmScreen("Stop training? A checkpoint is saved and you can resume later.",
                                           yes="Stop", no="Keep training", default_yes=True), answered)

    def action_resume_run(self) -> None:
        if self.status not in ("cancelled", "failed") or not self.run_dir:
            return
        if self.job is not None and self.job.running:
            # The child reported "cancelled" but is still writing its last files: resume once it exits.
            self.resume_when_exited = True
            self._set_status(self.status, "resuming as soon as the stopped run has exited...")
            return
        self.start(resume=Path(self.run_dir).name)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            event.stop()
            self.action_cancel_run()
        elif event.button.id == "resume":
            event.stop()
            self.action_resume_run()

    def can_continue(self) -> bool:
        if self.status != "completed":  # Ctrl+N must never do nothing silently
            hint = {"failed": "training failed: see the error; r resumes from the last checkpoint",
                    "cancelled": "training was cancelled: r resumes it; Continue needs a finished run"}
            self.notify(hint.get(self.status, "training is still running: Continue opens when it completes "
                                              "(c cancels it)"), severity="warning")
        return self.status == "completed"

    def action_back(self) -> None:
        if self.job is not None and self.job.running:
            self.notify("Training is running: cancel it first (c)", severity="warning")
            return
        super().action_back()

    def on_unmount(self) -> None:
        stop_job(self.job, finished=self.got_final)


def stop_job(job: ChildJob | None, *, finished: bool = False, grace_s: float = 15.0) -> None:
    """Leaving the wizard while a child runs: SIGINT (the trainer keeps a checkpoint), then kill if it
    will not stop. A child that already reported its result is only waited for, not interrupted."""
    if job is None or not job.running:
        return
    if not finished:
        job.cancel()
    if job.wait(grace_s) is None:
        job.kill()
