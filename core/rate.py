"""Training speed as a user should read it: tokens/s and time left from one smoothed rate.

A step event carries the instantaneous rate of its own logging interval, which jumps (an evaluation or a
checkpoint in between, packing, the first steps' warm-up: 32 one second, 4,769 the next), and an ETA
averaged since the start, so the two disagree. :class:`RateWindow` keeps the step events of the last
``window_s`` seconds (by the time each event was emitted, so a parent reading a child's stream late
still measures the child) and derives both numbers from that same window: the ETA is the steps left at
the window's steps per second. The CLI's progress line and the wizard's status line both use it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class _Point:
    time: float
    step: int
    tokens: int | None


class RateWindow:
    """Smoothed tokens/s, steps/s and time left over a sliding window of step events."""

    def __init__(self, window_s: float = 30.0, min_points: int = 3) -> None:
        self.window_s = window_s
        self.min_points = min_points
        self._points: deque[_Point] = deque()

    def reset(self) -> None:
        """Forget the history (a resumed run starts measuring afresh)."""
        self._points.clear()

    def add(self, event) -> None:
        """Record a Step event (``time``, ``step``, ``tokens_seen``)."""
        if self._points and event.step <= self._points[-1].step:
            self.reset()  # steps went back: a restart or a back-off from an earlier checkpoint
        self._points.append(_Point(float(event.time), int(event.step), getattr(event, "tokens_seen", None)))
        # keep the window, but always at least min_points so a slow run (a step per minute) still has a rate
        while len(self._points) > self.min_points and self._points[-1].time - self._points[1].time >= self.window_s:
            self._points.popleft()

    def _span(self) -> tuple[_Point, _Point] | None:
        if len(self._points) < self.min_points:
            return None
        first, last = self._points[0], self._points[-1]
        if last.time <= first.time or last.step <= first.step:
            return None
        return first, last

    @property
    def steps_per_s(self) -> float | None:
        span = self._span()
        return None if span is None else (span[1].step - span[0].step) / (span[1].time - span[0].time)

    @property
    def tokens_per_s(self) -> float | None:
        span = self._span()
        if span is None or span[0].tokens is None or span[1].tokens is None:
            return None
        return (span[1].tokens - span[0].tokens) / (span[1].time - span[0].time)

    def eta_s(self, step: int, total_steps: int) -> float | None:
        """Seconds until ``total_steps`` at the window's rate; None while it is still being measured."""
        rate = self.steps_per_s
        if rate is None or rate <= 0:
            return None
        return max(total_steps - step, 0) / rate
