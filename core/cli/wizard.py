"""``ftwiz wizard [RECIPE] [--machine FILE] [--no-resume]``: the wizard's arguments, for its ``--help``.

The wizard itself lives in ``ftwiz.tui`` (Textual); its arguments are declared here, without Textual, so
``ftwiz wizard --help`` and ``ftwiz --help`` answer instantly and show the same options the wizard takes.
"""

from __future__ import annotations

import argparse

DESCRIPTION = "Open the terminal wizard: doctor -> model -> data -> plan -> train -> export -> deploy -> chat."
EPILOG = """examples:
  ftwiz                                  the wizard on the built-in demo (same as `ftwiz wizard`)
  ftwiz wizard my-recipe.yaml            start from your own recipe (see `ftwiz recipe new`)
  ftwiz wizard --machine tests/fixtures/machines/rtx4060_desktop.json
                                         show the screens for a recorded machine (demos, screenshots)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe YAML to start from (default: the offline demo)")
    parser.add_argument("--machine", metavar="FILE",
                        help="use a recorded machine JSON instead of probing this one (demos, screenshots)")
    parser.add_argument("--no-resume", action="store_true", help="do not offer to resume an unfinished run")


def wizard_parser() -> argparse.ArgumentParser:
    """``ftwiz wizard``'s own parser: the launcher parses with it and hands the wizard the namespace."""
    parser = argparse.ArgumentParser(prog="ftwiz wizard", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)  # one declaration: `ftwiz wizard --help` (the CLI) shows exactly these
    return parser
