"""What every wizard step shares: the header, the steps bar, Back/Next keys, the footer, error display.

Not a step itself; each step screen subclasses :class:`WizardScreen` and fills ``compose_body``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from ftwiz.tui.widgets.steps_bar import StepsBar
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Static

if TYPE_CHECKING:
    from ftwiz.tui.app import FtwizApp


def error_text(exc: BaseException) -> Text:
    """An FtwizError as what/where/fix in colour; any other exception as its type and message."""
    what = getattr(exc, "what", None)
    if what is None:
        return Text(f"{type(exc).__name__}: {exc}", style="bold red")
    text = Text()
    where = getattr(exc, "where", None)
    if where:
        text.append(f"{where}: ", style="bold")
    text.append(what, style="bold red")
    fix = getattr(exc, "fix", None)
    if fix:
        text.append(f"\nfix: {fix}", style="green")
    return text


class WizardScreen(Screen[None]):
    """A wizard step: body in a scrolling column, a row of buttons, Back (Esc) and Next (Ctrl+N)."""

    STEP: ClassVar[str] = ""
    NEXT: ClassVar[str | None] = None
    NEXT_LABEL: ClassVar[str] = "Continue"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next", "Next"),
        Binding("escape", "back", "Back"),
    ]

    @property
    def wizard(self) -> FtwizApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepsBar(self.STEP)
        with VerticalScroll(id="body"):
            yield from self.compose_body()
            yield Static("", id="error", classes="error hidden")
        with Horizontal(id="actions"):
            yield from self.compose_actions()
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return []

    def compose_actions(self) -> Iterable[Widget]:
        if self.NEXT:
            yield Button(self.NEXT_LABEL, id="next", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide Next on the last step, so the footer only offers what works."""
        return action != "next" or bool(self.NEXT)

    def can_continue(self) -> bool:
        """Whether Next may leave this step now; screens block it while work is pending or failed."""
        return True

    def action_next(self) -> None:
        if self.NEXT and self.can_continue():
            self.leave()
            self.wizard.goto(self.NEXT)

    def leave(self) -> None:
        """Hook: save what the user entered into the wizard state before moving on."""

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:  # keep the default screen and the first step
            self.app.pop_screen()

    def show_error(self, exc: BaseException | str | None) -> None:
        box = self.query_one("#error", Static)
        if exc is None:
            box.update("")
            box.add_class("hidden")
            return
        box.update(error_text(exc) if isinstance(exc, BaseException) else Text(exc, style="bold red"))
        box.remove_class("hidden")
