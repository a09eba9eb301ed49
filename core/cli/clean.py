"""``ftwiz clean [--dry-run] [PATH ...]``: list and remove what interrupted jobs left behind.

A killed export, merge or data preparation leaves a hidden ``.NAME.<random>.partial`` file or folder
beside where its output would have gone (see ``ftwiz.core.atomic``). The next job writing to the same
folder removes them; this verb finds them anywhere, with their sizes. Partials a running ftwiz process is
still writing are shown as in use and never removed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  ftwiz clean --dry-run          list leftovers under the runs, data and cache folders, with sizes
  ftwiz clean                    remove them
  ftwiz clean ~/models           look under another folder (recursively)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="folders to search (default: ftwiz's runs, data and cache folders, and the current one)")
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")


def default_roots() -> list[tuple[Path, bool]]:
    """(folder, recursive): ftwiz's own folders whole, the current folder (``export --out`` default) only itself."""
    from ftwiz.core.paths import cache_dir, data_dir, runs_dir

    roots = {p.resolve(): True for p in (runs_dir(), data_dir(), cache_dir())}
    roots.setdefault(Path.cwd().resolve(), False)
    return [(root, recursive) for root, recursive in roots.items() if root.exists()]


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.atomic import find_partials, remove_leftover
    from ftwiz.core.cli.console import console, human_bytes
    from ftwiz.core.errors import FtwizError, Location

    for root in args.paths:
        if not root.exists():
            raise FtwizError("no such file or folder", where=Location(file=root), fix="give an existing folder")
    roots = [(root, True) for root in args.paths] or default_roots()
    seen: dict[Path, object] = {}
    for root, recursive in roots:
        for item in find_partials(root, recursive=recursive):
            seen.setdefault(item.path.resolve(), item)
    leftovers = list(seen.values())
    if not leftovers:
        console.print(f"no leftovers of interrupted jobs under {', '.join(str(r) for r, _ in roots)}",
                      highlight=False, soft_wrap=True)
        return 0
    freed = 0
    for item in leftovers:
        if item.in_use:
            console.print(f"  in use  {human_bytes(item.size):>10}  {item.path}  (a running job writes it; kept)",
                          highlight=False, markup=False, soft_wrap=True)
            continue
        if not args.dry_run:
            remove_leftover(item.path)
        freed += item.size
        verb = "would remove" if args.dry_run else "removed"
        console.print(f"  {verb}  {human_bytes(item.size):>10}  {item.path}", highlight=False, markup=False, soft_wrap=True)
    done = "would free" if args.dry_run else "freed"
    console.print(f"{done} {human_bytes(freed)}" + (" (run without --dry-run to remove them)" if args.dry_run else ""),
                  highlight=False)
    return 0
