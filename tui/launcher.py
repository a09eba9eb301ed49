"""The ``ftwiz`` console script: the wizard with no verb, the headless CLI with one.

This module must not import Textual at module level: ``ftwiz doctor`` and ``ftwiz --help`` never load
the UI, and the core stays usable on machines where only the CLI matters.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_wizard = not argv or (argv[0] == "wizard" and not {"-h", "--help"} & set(argv))
    if wants_wizard:
        from ftwiz.tui.app import run_wizard

        code = run_wizard(argv[1:] if argv else [])
    else:
        from ftwiz.core.cli import main as cli_main

        code = cli_main(argv)
    sys.exit(code)
