"""The wizard's breadcrumb: every step, the current one highlighted, so the user knows where they are."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

STEP_LABELS = ("doctor", "model", "data", "plan", "train", "export", "deploy", "chat")


def steps_text(current: str) -> Text:
    text = Text()
    for number, name in enumerate(STEP_LABELS, start=1):
        if number > 1:
            text.append(" › ", style="dim")
        if name == current:
            text.append(f"{number} {name}", style="bold reverse")
        else:
            text.append(f"{number} {name}", style="dim" if STEP_LABELS.index(name) > STEP_LABELS.index(current)
                        else "")
    return text


class StepsBar(Static):
    """One line at the top of every wizard screen."""

    DEFAULT_CSS = """
    StepsBar { height: 1; padding: 0 1; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(steps_text(current))
        self.current = current
