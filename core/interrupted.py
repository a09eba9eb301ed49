"""What a Ctrl-C leaves behind, in words: what was kept, what was thrown away, how to continue.

:mod:`ftwiz.core.atomic` records every output this process finished and every unfinished one it removed
when the interrupt arrived; the CLI prints :func:`interrupted_message` and exits 130. A SIGKILL gives the
same guarantees on disk (the next run sweeps the leftovers) but no message.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path


def _names(paths: Sequence[Path]) -> str:
    unique = list(dict.fromkeys(str(p) for p in paths))
    return ", ".join(unique[-5:]) + (f" (and {len(unique) - 5} more)" if len(unique) > 5 else "")


def interrupted_message(argv: Sequence[str]) -> str:
    """Several lines for the terminal: removed partials, kept outputs, the command that continues."""
    from ftwiz.core.atomic import COMPLETED, DISCARDED

    lines = ["interrupted: nothing half-written was left under a final name"]
    fresh = [p for p in DISCARDED if not p.exists()]
    replacing = [p for p in DISCARDED if p.exists()]  # --overwrite: the unfinished copy went, the old file stays
    if fresh:
        lines.append(f"  removed the unfinished {_names(fresh)}")
    if replacing:
        lines.append(f"  removed the unfinished replacement; the previous file is unchanged: {_names(replacing)}")
    kept = [p for p in COMPLETED if p.exists()]  # e.g. the merged model an interrupted export reuses
    if kept:
        lines.append(f"  kept what was finished: {_names(kept)}")
    command = shlex.join(["ftwiz", *argv])
    lines.append(f"  to continue, run the same command again: {command}")
    return "\n".join(lines)
