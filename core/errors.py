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

    def render(self) -> str:
        text = self.what
        if self.where:
            text = f"{self.where}: {text}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class CancelledByUser(FtwizError):
    """The user asked to stop (Ctrl-C, SIGTERM, the wizard's cancel); work done so far was kept."""
