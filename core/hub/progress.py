"""Download progress as plain data: bytes, speed, ETA, per file. The CLI draws it with rich, the wizard
with a ProgressBar; neither needs to know how the bytes arrive."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ftwiz.core.errors import FtwizError

WINDOW_S = 5.0  # speed over the last few seconds: responsive to a stall, steady enough to read


class PullCancelled(FtwizError):
    """The user cancelled; finished files and the partial one are kept for the next pull to resume."""


@dataclass(frozen=True)
class PullProgress:
    file: str             # the file being downloaded now
    file_done: int        # its bytes so far (including a resumed part)
    file_total: int       # its size in bytes (0 when unknown)
    done: int             # bytes of all selected files present so far
    total: int            # bytes of all selected files
    files_done: int       # files complete
    files_total: int
    speed_bps: float      # bytes per second over the last few seconds (0 until measured)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current speed; None until a speed is measured."""
        return (self.total - self.done) / self.speed_bps if self.speed_bps > 0 else None


ProgressCallback = Callable[[PullProgress], None]


class RateMeter:
    """Bytes per second over a sliding window of (time, bytes) samples."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, total_bytes: int) -> float:
        now = self.clock()
        self.samples.append((now, total_bytes))
        while len(self.samples) > 2 and now - self.samples[0][0] > WINDOW_S:
            self.samples.popleft()
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def human_size(n: float) -> str:
    """1.5 GB, 312 MB, 12 kB: decimal units, as the hub's pages show sizes."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def progress_line(p: PullProgress) -> str:
    """One line for a log or the wizard: file, bytes, speed, ETA."""
    speed = f"{human_size(p.speed_bps)}/s" if p.speed_bps else "measuring speed"
    return (f"{p.file} ({human_size(p.file_done)} of {human_size(p.file_total)}), file {p.files_done + 1} of "
            f"{p.files_total}; {human_size(p.done)} of {human_size(p.total)} at {speed}, {format_eta(p.eta_s)} left")
