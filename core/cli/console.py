"""Shared rich console helpers for CLI verbs (the CLI's only rendering dependency is rich).

``console`` and ``err_console`` are made on first use: importing rich's console costs ~0.05 s, a twentieth
of a one-second ``ftwiz export``, and a verb whose output goes to a pipe or a log has nothing to draw.
:func:`say` writes one line of a report through rich where it can be coloured and as plain text elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ftwiz.core.diskspace import human_bytes
from ftwiz.core.errors import FtwizError

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    err_console: Console

__all__ = ["console", "err_console", "human_bytes", "print_error", "print_json", "say", "warn", "warning_parts"]  # human_bytes: the verbs' import

_consoles: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``console`` (stdout) and ``err_console`` (stderr), each made once, on first use."""
    if name not in ("console", "err_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _consoles:
        from rich.console import Console

        stderr = name == "err_console"
        # to a pipe or a log rich would break every line at 80 columns (a long path split in two); there lines
        # are written whole, as on a terminal wide enough for them
        _consoles[name] = Console(stderr=stderr, soft_wrap=not styled(sys.stderr if stderr else sys.stdout))
    return _consoles[name]


def _console(name: str) -> Any:
    """The console called ``name``: one set on this module (a test's) wins over the lazily made one."""
    return globals()[name] if name in globals() else __getattr__(name)


def styled(stream: TextIO) -> bool:
    """Whether rich would style output to ``stream``, decided as its ``Console.is_terminal`` decides, without
    importing rich: ``TTY_COMPATIBLE`` 1 / 0 first, then ``FORCE_COLOR`` when set (empty: not a terminal), then
    ``isatty``. Where rich sees no terminal it wraps at 80 columns, so those lines must be printed plain."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or replaced stream
        return False


def say(*parts: str | tuple[str, str], stderr: bool = False) -> None:
    """One report line made of ``parts``: plain strings and ``(text, rich style)`` pairs. Styled (text
    escaped, so brackets in a path print as they are) where :func:`styled`, else plain text, unwrapped: a
    log keeps a long path on one line. Example: ``say(("wrote", "green"), f" {path}")``."""
    stream = sys.stderr if stderr else sys.stdout
    if stream is None:  # closed (`>&-`): Python sets it to None; rich writes nowhere too
        return
    if not styled(stream):
        try:
            stream.write("".join(part if isinstance(part, str) else part[0] for part in parts) + "\n")
            stream.flush()
        except BrokenPipeError:  # the reader left (`| head -1`): exit 1 quietly, as rich's console does
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # nothing left to flush at exit
            raise SystemExit(1) from None
        return
    from rich.markup import escape

    markup = "".join(escape(part) if isinstance(part, str) else f"[{part[1]}]{escape(part[0])}[/]" for part in parts)
    _console("err_console" if stderr else "console").print(markup, highlight=False)


def warning_parts(text: str) -> tuple[str | tuple[str, str], ...]:
    """A warning line as :func:`say`'s parts: ``warning:`` (yellow) and the text, so a log or a pipe, where no
    colour shows, still says which lines are warnings. A text that names its own kind (``note: ...``) keeps it."""
    if text.startswith(("note:", "warning:")):
        return ((text, "yellow"),)
    return (("warning:", "yellow"), f" {text}")


def warn(text: str, *, stderr: bool = True) -> None:
    """``warning: TEXT`` through :func:`say` (see :func:`warning_parts`): how every CLI verb says a warning."""
    say(*warning_parts(text), stderr=stderr)


def print_error(exc: FtwizError) -> None:
    """``error: WHERE: WHAT`` and ``  fix: FIX`` on stderr, through :func:`say`: styled on a terminal, whole
    lines in a log (a long path is not split at 80 columns); brackets (``pip install 'ftwiz[modelscope]'``)
    print as they are."""
    where = ((exc.shown_where, "bold"), ": ") if exc.shown_where else ()
    say(("error:", "bold red"), " ", *where, exc.what, stderr=True)
    if exc.fix:
        say("  ", ("fix:", "green"), f" {exc.fix}", stderr=True)


def print_json(data: Any) -> None:
    """Machine-readable output goes to stdout untouched by rich's wrapping."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
