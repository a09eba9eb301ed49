"""A one-line gauge: memory used against the budget, coloured when it gets tight.

Used by the plan screen (estimate vs usable VRAM or RAM) and the train screen (live peak vs total).
"""

from __future__ import annotations

from ftwiz.core.diskspace import human_bytes
from rich.text import Text
from textual.widgets import Static

__all__ = ["human_bytes", "gauge_text"]  # human_bytes re-exported: screens format sizes the way the CLI does (core.diskspace's)

WARN_AT = 0.85


def gauge_text(label: str, used: float | None, total: float | None, width: int = 24) -> Text:
    """``label [#####.....] 3.1 GiB / 8.0 GiB (39%)`` as styled text."""
    text = Text(f"{label:<10}")
    if not used or not total:
        text.append("[" + "·" * width + "] ", style="dim")
        text.append(f"{human_bytes(used)} / {human_bytes(total)}")
        return text
    share = used / total
    filled = min(width, round(share * width))
    style = "green" if share < WARN_AT else ("yellow" if share <= 1.0 else "bold red")
    text.append("[")
    text.append("█" * filled, style=style)
    text.append("·" * (width - filled), style="dim")
    text.append("] ")
    text.append(f"{human_bytes(used)} / {human_bytes(total)} ({share:.0%})", style=style if share > 1 else "")
    return text


class MemoryGauge(Static):
    """A labelled memory bar that fits its width; ``update_usage`` re-renders it."""

    DEFAULT_CSS = """
    MemoryGauge { height: 1; }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.label = label
        self.used: float | None = None
        self.total: float | None = None

    def render(self) -> Text:
        numbers = len(f"{human_bytes(self.total)} / {human_bytes(self.total)} (100%)")
        bar = max(6, min(24, self.size.width - 10 - 3 - numbers))
        return gauge_text(self.label, self.used, self.total, width=bar)

    def update_usage(self, used: float | None, total: float | None) -> None:
        if (used, total) == (self.used, self.total):
            return
        self.used, self.total = used, total
        # One line whose size the CSS fixes: a repaint is enough, a layout pass would cost ~10x more.
        self.refresh()
