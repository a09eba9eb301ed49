"""Go ``text/template`` source to a tree of nodes, for the renderer in :mod:`ftwiz.core.deploy.gotemplate`.

Why separate: lexing and parsing (actions, trim markers, pipelines, if/range/with blocks) are one job and
executing the tree against Ollama's values is another; either can be read and tested on its own.
Anything outside the subset Ollama chat templates use is a :class:`GoTemplateError`, never a guess.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class GoTemplateError(ValueError):
    """The template uses something this renderer does not implement, or fails to execute."""


# ---------------------------------------------------------------------------------------------- lexing

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


@dataclass
class _Text:
    text: str


@dataclass
class _Act:
    body: str


def split_actions(template: str) -> list[_Text | _Act]:
    """Text and action pieces with Go's trim markers applied (``{{- `` eats whitespace before it)."""
    pieces: list[_Text | _Act] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(template):
        text = template[pos:match.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        if text:
            pieces.append(_Text(text))
        body = match.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            pieces.append(_Act(body))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = template[pos:]
    if trim_next:
        tail = tail.lstrip(" \t\r\n")
    if tail:
        pieces.append(_Text(tail))
    return pieces


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:\\.|[^"\\])*")
  | (?P<raw>`[^`]*`)
  | (?P<op>:=|=|\||\(|\)|,)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_]\w*)*)
  | (?P<field>(?:\.[A-Za-z_]\w*)+|\.)
  | (?P<ident>[A-Za-z_]\w*)
    )""",
    re.X,
)


def _tokens(body: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    body = body.strip()
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if not match or match.end() == pos:
            raise GoTemplateError(f"cannot parse action near {body[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


# ---------------------------------------------------------------------------------------------- parsing


@dataclass
class Pipe:
    decl: list[str]          # variables on the left of := or =
    assign: bool             # True for "=", False for ":="
    cmds: list[list[Any]]    # each command: list of operands


@dataclass
class Node:
    kind: str                # text | action | if | range | with
    text: str = ""
    pipe: Pipe | None = None
    branches: list[tuple[Pipe, list[Node]]] = field(default_factory=list)
    else_body: list[Node] = field(default_factory=list)


def _parse_pipe(tokens: list[tuple[str, str]]) -> Pipe:
    decl: list[str] = []
    assign = False
    for index, (kind, value) in enumerate(tokens):
        if kind == "op" and value in (":=", "="):
            names = [v for k, v in tokens[:index] if k == "var"]
            if not names or any(k not in ("var", "op") for k, _ in tokens[:index]):
                raise GoTemplateError("bad variable declaration")
            decl, assign, tokens = names, value == "=", tokens[index + 1:]
            break
    cmds: list[list[Any]] = []
    pos = 0

    def operand() -> Any:
        nonlocal pos
        kind, value = tokens[pos]
        pos += 1
        if kind == "op" and value == "(":
            depth, start = 1, pos
            while depth:
                if pos >= len(tokens):
                    raise GoTemplateError("unbalanced parentheses")
                if tokens[pos] == ("op", "("):
                    depth += 1
                elif tokens[pos] == ("op", ")"):
                    depth -= 1
                pos += 1
            node: Any = ("pipe", _parse_pipe(tokens[start:pos - 1]))
            if pos < len(tokens) and tokens[pos][0] == "field" and tokens[pos][1] != ".":
                node = ("fieldof", node, tokens[pos][1][1:].split("."))
                pos += 1
            return node
        if kind == "str":
            return ("lit", json.loads(value))
        if kind == "raw":
            return ("lit", value[1:-1])
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "var":
            name, _, rest = value.partition(".")
            return ("var", name, rest.split(".") if rest else [])
        if kind == "field":
            return ("field", [] if value == "." else value[1:].split("."))
        if kind == "ident":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "nil":
                return ("lit", None)
            return ("func", value)
        raise GoTemplateError(f"unexpected {value!r}")

    current: list[Any] = []
    while pos < len(tokens):
        if tokens[pos] == ("op", "|"):
            if not current:
                raise GoTemplateError("empty command before '|'")
            cmds.append(current)
            current = []
            pos += 1
            continue
        current.append(operand())
    if current:
        cmds.append(current)
    if not cmds:
        raise GoTemplateError("empty pipeline")
    return Pipe(decl, assign, cmds)


def _keyword(body: str) -> tuple[str, str]:
    word, _, rest = body.partition(" ")
    if word in ("if", "range", "with", "end", "else", "define", "template", "block", "break", "continue"):
        return word, rest.strip()
    return "", body


def parse(pieces: list[_Text | _Act], pos: int = 0, stop: tuple[str, ...] = ()) -> tuple[list[Node], int, str]:
    """Parse until one of the ``stop`` keywords; returns (nodes, position after it, the keyword body)."""
    nodes: list[Node] = []
    while pos < len(pieces):
        piece = pieces[pos]
        pos += 1
        if isinstance(piece, _Text):
            nodes.append(Node("text", text=piece.text))
            continue
        word, rest = _keyword(piece.body)
        if word in ("end", "else"):
            if word not in stop:
                raise GoTemplateError(f"unexpected {{{{{piece.body}}}}}")
            return nodes, pos, piece.body
        if word in ("if", "with", "range"):
            node = Node(word)
            cond = _parse_pipe(_tokens(rest))
            body, pos, ended = parse(pieces, pos, ("end", "else"))
            node.branches.append((cond, body))
            while ended.startswith("else"):
                rest_else = ended[4:].strip()
                if word == "if" and rest_else.startswith("if "):
                    cond = _parse_pipe(_tokens(rest_else[3:]))
                    body, pos, ended = parse(pieces, pos, ("end", "else"))
                    node.branches.append((cond, body))
                elif not rest_else:
                    node.else_body, pos, ended = parse(pieces, pos, ("end",))
                else:
                    raise GoTemplateError(f"unsupported {{{{{ended}}}}}")
            nodes.append(node)
            continue
        if word:
            raise GoTemplateError(f"'{word}' is not supported by ftwiz's template renderer")
        nodes.append(Node("action", pipe=_parse_pipe(_tokens(piece.body))))
    if stop:
        raise GoTemplateError("missing {{ end }}")
    return nodes, pos, ""
