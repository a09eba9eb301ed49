"""The ``ftwiz`` console script: the wizard with no verb, the headless CLI with one.

This module must not import Textual at module level: ``ftwiz doctor`` and ``ftwiz --help`` never load
the UI, and the core stays usable on machines where only the CLI matters.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_wizard = not argv or (argv[0] == "wizard" and not {"-h", "--help"} & set(argv))
    if wants_wizard:
        # the console script is where the wizard and the CLI meet: it parses the wizard's arguments with
        # the declaration `ftwiz wizard --help` shows, so the wizard itself never imports the CLI
        from ftwiz.core.cli.wizard import wizard_parser
        from ftwiz.tui.app import run_wizard

        code = run_wizard(wizard_parser().parse_args(argv[1:] if argv else []))
    else:
        from ftwiz.core.cli import main as cli_main

        code = cli_main(argv)
    # The command is over; what is left is tearing the interpreter down. Its final garbage collections
    # walk every object still alive (numpy, gguf, a vocabulary: 0.03-0.07 s of a one-second export), and
    # objects alive at exit are not promised finalisation anyway, so they are moved out of the
    # collector's view first. Files are closed by their owners; atexit handlers still run.
    gc.freeze()
    sys.exit(code)
