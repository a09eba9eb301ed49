"""One error type for everything a user can fix.

Every failure a user can act on is raised as :class:`FtwizError`: it says *what* went wrong, *where*
(file, line or record, field), and *what to do*. The CLI prints it without a traceback and exits
with status 2; the wizard shows it in a dialog. Bugs stay ordinary exceptions with tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Location:
    """Where a problem is: any of file, line (1-based), record index (0-based) and field path."""

    file: str | Path | None = None
    line: int | None = None
    record: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class FtwizError(Exception):
    """A problem the user can fix: what happened, where, and the one-line fix."""

    def __init__(self, what: str, *, where: Location | str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.render())

    @property
    def shown_where(self) -> str:
        """The location as printed before the message, or '' when there is none or the message already begins
        with it: ``where="--var"`` with "--var expects NAME=VALUE, got 'x'" prints ``--var expects ...``, not
        ``--var: --var expects ...``. The one rule every printer (CLI, wizard, events) goes by."""
        if not self.where:
            return ""
        shown = str(self.where)
        if any(_begins_with(self.what, name) for name in _names_of(self.where)):
            return ""
        return shown

    def headline(self) -> str:
        """``WHERE: WHAT`` (``WHAT`` alone when :attr:`shown_where` is empty): the error without its fix."""
        where = self.shown_where
        return f"{where}: {self.what}" if where else self.what

    def render(self) -> str:
        text = self.headline()
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


def _names_of(where: Location | str) -> list[str]:
    """How a message may name ``where`` when it begins with it: the text itself, and for a Location that holds
    only a field or only a file, that field or file alone (``cutoff_len 0 ...`` names field 'cutoff_len')."""
    names = [str(where)]
    if isinstance(where, Location):
        parts = [part for part in (where.file, where.line, where.record, where.field) if part is not None]
        if len(parts) == 1 and isinstance(parts[0], (str, Path)):
            names.append(str(parts[0]))
    return [name for name in names if name]


def _begins_with(text: str, name: str) -> bool:
    """``text`` starts with ``name`` as a whole word: '--var x' with '--var', not '--variables' or '/a/b.txt'
    with '/a/b'."""
    if not text.startswith(name):
        return False
    rest = text[len(name):]
    return not rest or not (rest[0].isalnum() or rest[0] in "-_./\\")


class CancelledByUser(FtwizError):
    """The user asked to stop (Ctrl-C, SIGTERM, the wizard's cancel); work done so far was kept."""
