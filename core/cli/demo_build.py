"""The demo model's one-time build, shown by any verb that triggers it (`ftwiz plan demo` on first use).

Without this the first `ftwiz plan`/`train`/`data preview` on 'demo' sat silent for one to two minutes
while the model was pre-trained (``ftwiz demo`` has its own bar and passes its own callback).
"""

from __future__ import annotations

from typing import Any


class DemoBuildReporter:
    """A ``BuildProgress`` callback: a bar with the time left on a terminal, one line otherwise."""

    def __init__(self, console: Any = None) -> None:
        self._console = console  # rich's console is made only when a build happens (0.05 s of imports)
        self.bar: Any = None
        self.task: Any = None
        self.started = False

    @property
    def console(self) -> Any:
        if self._console is None:
            from ftwiz.core.cli.console import err_console

            self._console = err_console
        return self._console

    def __call__(self, progress) -> None:
        if not self.started:
            self.started = True
            if not self.console.is_terminal:  # logs and the wizard's child output: one line, no redraws
                self.console.print("building the demo model (once, about a minute; cached afterwards)...",
                                   highlight=False)
            else:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self.bar = Progress(TextColumn("[bold]building the demo model (once)"), BarColumn(),
                                    MofNCompleteColumn(), TimeRemainingColumn(), console=self.console,
                                    transient=False)
                self.bar.start()
                self.task = self.bar.add_task("demo", total=progress.total)
        if self.bar is not None:
            self.bar.update(self.task, completed=progress.done, total=progress.total)
        if progress.stage == "done":
            if self.bar is not None:
                self.bar.stop()
                self.bar = None
            else:
                self.console.print("the demo model is ready", highlight=False)


def show_demo_builds() -> None:
    """Route builds that nobody else reports to a :class:`DemoBuildReporter` (called once by ``main``)."""
    from ftwiz.core.build_reports import report_builds_to

    report_builds_to(DemoBuildReporter())
