"""Shared rich console helpers for CLI verbs (the CLI's only rendering dependency is rich)."""

from __future__ import annotations

import json
import sys
from typing import Any

from ftwiz.core.diskspace import human_bytes
from ftwiz.core.errors import FtwizError
from rich.console import Console

__all__ = ["console", "err_console", "human_bytes", "print_error", "print_json"]  # human_bytes: the verbs' import

console = Console()
err_console = Console(stderr=True)


def print_error(exc: FtwizError) -> None:
    from rich.markup import escape

    # escaped: a fix like `pip install 'ftwiz[modelscope]'` must print its brackets, not be read as a style
    where = f"[bold]{escape(str(exc.where))}[/bold]: " if exc.where else ""
    err_console.print(f"[bold red]error:[/bold red] {where}{escape(exc.what)}", highlight=False, markup=True)
    if exc.fix:
        err_console.print(f"  [green]fix:[/green] {escape(exc.fix)}", highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output goes to stdout untouched by rich's wrapping."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
