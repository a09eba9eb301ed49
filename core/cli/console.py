"""Shared rich console helpers for CLI verbs (the CLI's only rendering dependency is rich)."""

from __future__ import annotations

import json
import sys
from typing import Any

from ftwiz.core.errors import FtwizError
from rich.console import Console

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


def human_bytes(n: float | int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
