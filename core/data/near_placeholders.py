"""Text that looks like a ``{{placeholder}}`` but is none, found before any value is filled in.

A placeholder name is letters, digits and ``_`` (``PLACEHOLDER`` in :mod:`ftwiz.core.data.validate`), so
``{{first-name}}`` or ``{{bot name}}`` is no placeholder: no ``--var`` fills it, training does not refuse it, and
the model learns the braces as written. Said as a warning, never refused: braces may be meant literally.

Which shapes are said where (literal braces are ordinary in data, rare in a system prompt):

- data: only words joined by hyphens (``{{first-name}}``). Code samples in data hold ``{{ u.name }}`` (Jinja),
  ``{{.Name}}`` / ``{{range .Items}}`` (Go), ``{{#each items}}`` / ``{{uppercase name}}`` (Handlebars),
  ``{{{raw-html}}}`` (Mustache's unescaped variable: three braces are never a placeholder); a
  spaced pair of words is a Handlebars helper call there, so only the hyphenated shape, which reads as a
  misspelled name, is said.
- the recipe's ``system:`` prompt: hyphenated or space-separated words (``{{bot name}}``), as written by the
  user for this model, before any value is filled (a ``--var`` value's own braces are the value, said nowhere).
"""

from __future__ import annotations

import re

_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
# not inside a third brace: {{{raw-html}}} is Mustache/Handlebars' unescaped variable, template code
NEAR_IN_DATA = re.compile(r"(?<!\{)\{\{\s*(" + _WORD + r"(?:-[A-Za-z0-9_]+)+)\s*\}\}(?!\})")
NEAR_IN_SYSTEM = re.compile(r"(?<!\{)\{\{\s*(" + _WORD + r"(?:(?:-|\s+)[A-Za-z0-9_]+)+)\s*\}\}(?!\})")
SHOWN = 5  # distinct texts named one by one; more are counted


def usable_name(name: str) -> str:
    """``name`` as a placeholder name (letters, digits and _, not starting with a digit): itself when it is one.
    ``first-name`` -> ``first_name``, ``bot name`` -> ``bot_name``."""
    usable = re.sub(r"\W+", "_", name.strip(), flags=re.ASCII)
    return usable if re.match(r"[A-Za-z_]", usable) else f"_{usable}"


def near_in_texts(texts, pattern: re.Pattern[str] = NEAR_IN_DATA) -> list[str]:
    """The placeholder-like texts (``{{first-name}}`` as written) in ``texts``, each once, in order of appearance."""
    found: dict[str, None] = {}
    for text in texts:
        for match in pattern.finditer(text or ""):
            found.setdefault(match.group(0), None)
    return list(found)


def _fix(text: str, where: str) -> str:
    name = usable_name(text[2:-2])  # the text between the braces
    return (f"to fill it, write {{{{{name}}}}} {where} and give --var {name}=VALUE; leave it if the braces are "
            "meant literally")


def data_warnings(near: dict[str, tuple[str, int]]) -> list[str]:
    """One warning per placeholder-like text in the data: ``near`` maps the text to (where it is first, e.g.
    ``data.jsonl, line 3``; how many records hold it)."""
    lines = []
    for text, (where, count) in list(near.items())[:SHOWN]:
        more = f" (and {count - 1} more record{'s' if count > 2 else ''})" if count > 1 else ""
        lines.append(f"{where}{more}: {text} is no placeholder (a name is letters, digits and _), so no --var fills "
                     f"it and it is trained as written; {_fix(text, 'in the data')}")
    if len(near) > SHOWN:
        lines.append(f"{len(near) - SHOWN} more placeholder-like texts in the data are trained as written: "
                     + ", ".join(list(near)[SHOWN:SHOWN + 10]))
    return lines


def system_warnings(system: str | None, *, recipe_file: str | None = None) -> list[str]:
    """One warning per placeholder-like text in the recipe's ``system:`` prompt as written (before filling)."""
    field = f"{recipe_file}, system:" if recipe_file else "the recipe's system:"
    return [f"{field} {text} is no placeholder (a name is letters, digits and _), so no --var fills it and the "
            f"system prompt is trained and sent as written; {_fix(text, 'in system:')}"
            for text in near_in_texts([system or ""], NEAR_IN_SYSTEM)]
