"""Training and validation loss over steps, drawn with textual-plotext.

Redrawing plotext on every step event would cost more than the training step on a tiny model and would
starve key handling, so points are appended cheaply and the owner calls :meth:`LossChart.redraw_if_due`
from a timer: the chart replots at most every ``REPLOT_S`` seconds, and only when it has new points.
"""

from __future__ import annotations

import time

from textual_plotext import PlotextPlot

REPLOT_S = 1.0
# plotext's cost grows with the points drawn (~50 ms for 100, ~350 ms for 5,000 on a busy 2-core box) and
# a terminal chart is under 200 cells wide anyway: longer series are drawn as bucket means.
MAX_POINTS = 120


def downsample(xs: list[int], ys: list[float], limit: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most ``limit`` points: consecutive buckets replaced by their mean step and mean loss."""
    if len(xs) <= limit:
        return [float(x) for x in xs], list(ys)
    size = len(xs) / limit
    out_x, out_y = [], []
    for bucket in range(limit):
        lo, hi = int(bucket * size), max(int((bucket + 1) * size), int(bucket * size) + 1)
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def step_ticks(first: int, last: int, count: int = 5) -> list[int]:
    """At most ``count`` whole-number step ticks from ``first`` to ``last``, evenly spread."""
    if last <= first:
        return [first]
    return sorted({round(first + (last - first) * i / (count - 1)) for i in range(count)})


class LossChart(PlotextPlot):
    """Loss per optimizer step, with eval loss as a second series; a red line where the loss diverged."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 8; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.eval_steps: list[int] = []
        self.eval_losses: list[float] = []
        self.diverged_at: int | None = None  # the step whose loss was NaN or infinite (the run stopped there)
        self._last_plot = 0.0
        self._dirty = False

    def on_mount(self) -> None:
        self._replot()

    def add_step(self, step: int, loss: float | None) -> None:
        """A step's loss; None (the event's null for NaN/inf) marks where training diverged."""
        if loss is None:
            self.diverged_at = step
        else:
            self.steps.append(step)
            self.losses.append(loss)
            if self.diverged_at is not None and step >= self.diverged_at:  # resumed past it
                self.diverged_at = None
        self._dirty = True

    def add_eval(self, step: int, loss: float) -> None:
        self.eval_steps.append(step)
        self.eval_losses.append(loss)
        self._dirty = True

    def redraw_if_due(self) -> None:
        """Replot if points arrived and the last replot is older than ``REPLOT_S``."""
        if self._dirty and time.monotonic() - self._last_plot >= REPLOT_S:
            self._replot()

    def flush(self) -> None:
        """Draw whatever arrived since the last replot (call at the end of a run)."""
        if self._dirty:
            self._replot()

    def _replot(self) -> None:
        self._last_plot = time.monotonic()
        self._dirty = False
        plt = self.plt
        plt.clear_data()
        plt.title("loss")
        plt.xlabel("step")
        if self.steps:
            plt.plot(*downsample(self.steps, self.losses), label="train", marker="braille")
            ticks = step_ticks(self.steps[0], max(self.steps[-1], self.diverged_at or 0))
            plt.xticks(ticks, [str(t) for t in ticks])  # whole steps: plotext's own ticks are fractional
        if self.eval_steps:
            plt.plot(*downsample(self.eval_steps, self.eval_losses), label="eval", marker="dot")
        if self.diverged_at is not None:
            plt.vline(self.diverged_at, "red")
            plt.title(f"loss - not finite (NaN/inf) at step {self.diverged_at}")  # a skipped fp16 step clears it
        self.refresh()
