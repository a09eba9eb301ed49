"""What survives ``ollama create -f``: Ollama's Modelfile parser keeps printable characters only.

The parser copies a value's characters into its buffer only when Go's ``strconv.IsPrint`` accepts them
(letters, marks, numbers, punctuation, symbols and the ASCII space); tabs and line breaks inside a quoted
value are kept on another path. Every other character (a no-break space U+00A0 pasted from a web page, the
zero-width joiner U+200D inside emoji such as a family or a flag sequence, a soft hyphen U+00AD) is dropped
without a word, so a SYSTEM that holds one prompts the model with another text than it was trained and
registered with. Ollama's REST API (``ftwiz register`` without ``--modelfile``) takes the text as JSON and
keeps every character.
"""

from __future__ import annotations

import unicodedata

from ftwiz.core.errors import FtwizError

# where the user gave each text, for the fix
_WHERE_GIVEN = {"SYSTEM": " (--system, or the recipe's system: then train again)", "LICENSE": " (--license)"}
_EFFECT = {"SYSTEM": "prompt the model with", "TEMPLATE": "prompt the model with", "stop string": "stop on"}
KEPT_CONTROLS = "\t\n\r"  # reach the value through the parser's whitespace path, inside quotes


def dropped_character(text: str) -> tuple[str, int, int] | None:
    """(character, line, column), both 1-based, of the first character the parser drops; None if none."""
    for line_no, line in enumerate(text.split("\n"), start=1):
        for col, ch in enumerate(line, start=1):
            if ch == " " or ch in KEPT_CONTROLS or unicodedata.category(ch)[0] in "LMNPS":
                continue
            return ch, line_no, col
    return None


def require_parsable(what: str, text: str | None) -> None:
    """FtwizError naming the character, when ``ollama create -f`` would drop one from ``what``'s text."""
    found = dropped_character(text or "")
    if found is None:
        return
    ch, line, col = found
    name = unicodedata.name(ch, "a control character")
    raise FtwizError(
        f"the {what} holds {name} (U+{ord(ch):04X}) at line {line}, column {col}, which `ollama create -f` drops "
        f"(Ollama's Modelfile parser keeps printable characters only), so Ollama would {_EFFECT.get(what, 'use')} "
        f"another {what} than the one given", where=what,
        fix="register through Ollama's API instead (`ftwiz register` without --modelfile keeps every character), "
            f"or replace that character in the {what}" + _WHERE_GIVEN.get(what, ""))
