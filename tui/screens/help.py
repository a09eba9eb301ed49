"""The help screen (F1): the flow, the keys, and where ftwiz keeps things."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("Enter", "press the focused button (Continue, on each step)"),
    ("Ctrl+N", "next step, when this one is done"),
    ("Esc", "previous step"),
    ("Tab", "next field or button (Shift+Tab: back)"),
    ("c", "cancel training (asks; keeps a checkpoint)"),
    ("r", "resume a cancelled run"),
    ("Ctrl+T", "light / dark theme"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit (asks first while a job runs)"),
)


def help_text() -> Text:
    from ftwiz.core.paths import runs_dir

    text = Text("ftwiz wizard\n\n", style="bold")
    text.append("doctor › model › data › plan › train › export › deploy › chat\n\n")
    text.append("Accept every default to fine-tune the embedded demo model on CPU and chat with it.\n"
                "Every step is also a CLI verb: ftwiz doctor, plan, data, train, export, register, serve, chat.\n\n")
    for key, what in KEYS:
        text.append(f"{key:>8}  ", style="bold cyan")
        text.append(f"{what}\n")
    text.append(f"\nRuns are kept in {runs_dir()}", style="dim")
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("f1", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            # outside the scrolling text, so it shows on an 80x24 terminal however long the help grows
            yield Static(Text("Esc or F1 closes this help (arrows scroll)", style="dim"), id="help-close")
            with VerticalScroll(id="help-body"):
                yield Static(help_text())

    def action_close(self) -> None:
        self.dismiss(None)
