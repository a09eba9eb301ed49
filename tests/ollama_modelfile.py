"""Ollama's reading of a Modelfile (``ollama create -f``), as its Go parser (parser/parser.go) behaves.

A test oracle, written from the parser's rules: a command's value runs to the first line break at which the
text so far (spaces trimmed) is complete: bare, or wrapped in ``"..."`` or in triple quotes. Spaces never end it.
Quotes are only stripped; there are no escapes, so a backslash stays in the value. Characters that Go's
``strconv.IsPrint`` rejects are dropped, except spaces, tabs and line breaks inside a quoted value.
"""

from __future__ import annotations

import unicodedata

COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
            "message", "requires"}


def _unquote(text: str) -> tuple[str, bool]:
    if text.startswith('"""'):
        return (text[3:-3], True) if len(text) >= 6 and text.endswith('"""') else ("", False)
    if text.startswith('"'):
        return (text[1:-1], True) if len(text) >= 2 and text.endswith('"') else ("", False)
    return text, True


def _printable(ch: str) -> bool:
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def parse(text: str) -> list[tuple[str, str]]:
    """(command, value) pairs; a PARAMETER's command is its name ("stop", "num_ctx"), FROM's is "model".

    ValueError where Ollama refuses the file (an unknown command, an unclosed quote).
    """
    commands: list[tuple[str, str]] = []
    state, name, buf = "nil", "", ""
    for ch in text:
        white, newline = ch in " \t", ch in "\r\n"
        if state == "nil":
            if ch == "#":
                state = "comment"
            elif not (white or newline):
                state, buf = "name", ch
            continue
        if state == "comment":
            state = "nil" if newline else "comment"
            continue
        if state == "name":
            if ch.isascii() and ch.isalpha():
                buf += ch
                continue
            if not white or buf.lower() not in COMMANDS:
                raise ValueError(f"invalid command {buf!r}")
            name = {"from": "model"}.get(buf.lower(), buf.lower())
            state, buf = ("parameter" if name == "parameter" else "value"), ""
            continue
        if state == "parameter":
            if ch.isascii() and (ch.isalnum() or ch == "_"):
                buf += ch
                continue
            if not white:
                raise ValueError("unexpected end of a PARAMETER name")
            name, state, buf = buf, "value", ""
            continue
        # state == "value": a space never ends it; a line break ends it once the text so far is complete
        if white or newline:
            value, complete = _unquote(buf.strip())
            if newline and complete:
                commands.append((name, value))
                state, buf = "nil", ""
            else:
                buf += ch
            continue
        if _printable(ch):
            buf += ch
    if state == "value":
        value, complete = _unquote(buf.strip())
        if not complete:
            raise ValueError("unclosed quote at the end of the Modelfile")
        commands.append((name, value))
    elif state not in ("nil", "comment"):
        raise ValueError("the Modelfile ends inside a command")
    return commands
