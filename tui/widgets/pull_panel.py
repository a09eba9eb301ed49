"""Download a base model from the model step: ask first (files, size, disk, fit, licence), then a bar with
bytes, speed, time left and the current file; cancellable, and the next try resumes where it stopped.

The work is ``ftwiz.core.hub`` in thread workers; progress comes back through ``call_from_thread``, at
most a few times a second (a fast link delivers hundreds of chunks a second).
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, ProgressBar, Static
from textual.worker import Worker, WorkerState

UPDATES_PER_S = 8


def needs_pull(name: str, error: BaseException | None) -> bool:
    """Whether resolving ``name`` failed only because the hub id is not downloaded yet."""
    what = getattr(error, "what", "")
    return name.count("/") == 1 and "not in the local Hugging Face cache" in what


class PullPanel(Vertical):
    """Hidden until :meth:`offer`; posts :class:`PullPanel.Pulled` when the model is in the cache."""

    DEFAULT_CSS = """
    PullPanel { height: auto; margin-top: 1; }
    PullPanel #pull-bar { width: 100%; }
    PullPanel #pull-cancel { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("c", "cancel_pull", "Cancel download")]

    class Pulled(Message):
        """The model's files are in the Hugging Face cache, at ``commit``."""

        def __init__(self, repo_id: str, commit: str) -> None:
            super().__init__()
            self.repo_id, self.commit = repo_id, commit

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cancel_event = threading.Event()
        self.model = ""
        self.last_update = 0.0
        self.plan = None

    def compose(self) -> ComposeResult:
        yield Static("", id="pull-status")
        yield ProgressBar(total=None, id="pull-bar", show_eta=False, classes="hidden")
        yield Button("Cancel download (c)", id="pull-cancel", variant="warning", classes="hidden")

    @property
    def downloading(self) -> bool:
        return any(w.group == "pull" and w.state == WorkerState.RUNNING for w in self.workers)

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#pull-status", Static).update(Text(text, style=style))

    def offer(self, name: str) -> None:
        """Look the model up on the hub, then ask whether to download it."""
        if self.downloading:
            return  # Continue pressed while it downloads: the running download carries on
        self.model = name
        self.remove_class("hidden")
        self._status(f"{name} is not downloaded yet; looking it up on the hub...", "dim")
        self._prepare(name)

    @work(thread=True, exclusive=True, group="pull-plan", exit_on_error=False)
    def _prepare(self, name: str):
        from ftwiz.core.hub.pull import prepare_pull

        return prepare_pull(name, hardware=getattr(self.app, "state", None) and self.app.state.hardware)

    def _ask(self, plan) -> None:
        from ftwiz.core.hub.progress import human_size
        from ftwiz.tui.screens.confirm import ConfirmScreen

        self.plan = plan
        if not plan.to_download:  # everything is here already (a cancelled pull that had finished)
            self._answered(True)
            return
        question = "\n".join(plan.summary_lines()) + f"\n\nDownload {human_size(plan.to_download)} now?"
        self._status(f"{self.model}: waiting for your answer", "dim")
        # Text, not a markup string: a path or licence name with [brackets] must show as written
        self.app.push_screen(ConfirmScreen(Text(question), yes="Download", no="Not now",  # type: ignore[arg-type]
                                           default_yes=True), self._answered)

    def _answered(self, yes: bool | None) -> None:
        if not yes or self.plan is None:
            self._status(f"{self.model} was not downloaded: `ftwiz pull {self.model}` fetches it from a terminal",
                         "yellow")
            return
        self.cancel_event.clear()
        bar = self.query_one("#pull-bar", ProgressBar)
        bar.update(total=self.plan.selection.total_bytes, progress=self.plan.have_bytes)
        bar.remove_class("hidden")
        cancel = self.query_one("#pull-cancel", Button)
        cancel.remove_class("hidden")
        cancel.focus()
        self._status(f"downloading {self.model}...")
        self._download(self.plan)

    @work(thread=True, exclusive=True, group="pull", exit_on_error=False)
    def _download(self, plan):
        from ftwiz.core.hub.pull import run_pull

        def on_progress(p) -> None:
            now = time.monotonic()
            if now - self.last_update >= 1 / UPDATES_PER_S or p.done >= p.total:
                self.last_update = now
                self.app.call_from_thread(self._show, p)

        result = run_pull(plan, on_progress=on_progress, cancelled=self.cancel_event.is_set)
        from ftwiz.core.export.vocab_warm import warm_vocab_cache

        warm_vocab_cache(result.path)  # the first export of this model finds its vocabulary parsed (~0.5 s saved)
        return result

    def _show(self, progress) -> None:
        from ftwiz.core.hub.progress import progress_line

        self.query_one("#pull-bar", ProgressBar).update(total=progress.total or None, progress=progress.done)
        self._status(progress_line(progress))

    def action_cancel_pull(self) -> None:
        if self.downloading:
            self.cancel_event.set()
            self._status("cancelling: what arrived is kept for the next try...", "yellow")

    @on(Button.Pressed, "#pull-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel_pull()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group not in ("pull-plan", "pull"):
            return
        event.stop()  # the screen's own handler is for its workers
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.worker.group == "pull-plan":
            if event.state == WorkerState.SUCCESS:
                self._ask(event.worker.result)
            else:
                self._failed(event.worker.error)
            return
        self.query_one("#pull-cancel", Button).add_class("hidden")
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            self._status(f"downloaded {result.repo_id} at commit {result.commit[:12]}", "green")
            self.post_message(self.Pulled(result.repo_id, result.commit))
            return
        from ftwiz.core.hub.progress import PullCancelled

        if isinstance(event.worker.error, PullCancelled):
            self._status("download cancelled; what arrived is kept: Continue resumes it", "yellow")
            return
        self._failed(event.worker.error)

    def _failed(self, error: BaseException | None) -> None:
        self.query_one("#pull-bar", ProgressBar).add_class("hidden")
        self._status("")
        show = getattr(self.screen, "show_error", None)
        if show is not None:
            show(error or "download failed")
