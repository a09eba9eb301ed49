"""A yes/no question as a modal dialog (cancel a training run, overwrite an export)."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (yes, y) or False (no, n, Esc); Enter presses the focused button, which is the
    safe answer unless ``default_yes`` (the user already asked for it, e.g. pressed c to cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
    ]

    def __init__(self, question: RenderableType, yes: str = "Yes", no: str = "No", *,
                 default_yes: bool = False) -> None:
        super().__init__()
        self.question, self.yes, self.no, self.default_yes = question, yes, no, default_yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            with Horizontal(id="answers"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no", variant="primary")
            enter = self.yes if self.default_yes else self.no
            yield Static(f"Enter: {enter}   y: {self.yes}   n or Esc: {self.no}", id="keys", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.default_yes else "#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
