"""A small, faithful renderer for the Go ``text/template`` subset that Ollama chat templates use.

Why it exists: a Modelfile TEMPLATE that renders differently from the model's own Jinja chat template
is the top cause of gibberish after export. ftwiz proves its generated TEMPLATE right by rendering it
here, with the same values Ollama passes (``.System``, ``.Messages`` with ``.Role``/``.Content``,
``.Prompt``, ``.Response``), and comparing with the Jinja rendering. Nothing is sent to Ollama that
has not passed that comparison.

Supported (Go semantics): text and actions with ``{{-``/``-}}`` trim markers, comments, ``if`` /
``else if`` / ``else`` / ``end``, ``range`` (with ``$i, $x :=`` and ``else``), ``with``, variable
declaration ``:=`` and assignment ``=``, fields on ``.``/``$``/``$var``/parenthesised pipelines, string,
number and boolean literals, pipelines with ``|``, and the functions ``and or not len index slice eq ne
lt le gt ge print println printf``. Anything else is a :class:`GoTemplateError` rather than a guess.
Parsing lives in :mod:`ftwiz.core.deploy.gotemplate_parse`; this module executes the tree.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date as _date
from datetime import timedelta as _timedelta
from typing import Any

from ftwiz.core.deploy.gotemplate_parse import GoTemplateError, Node, Pipe, parse, split_actions

__all__ = ["GoTemplateError", "check_go_template", "ollama_values", "render_go_template", "truth"]

# ---------------------------------------------------------------------------------------------- execution


def truth(value: Any) -> bool:
    """Go's notion of truth: zero values ("", 0, false, nil, empty collections) are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, Sequence, Mapping)):
        return len(value) > 0
    return True


def _fmt(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        value = next(values)
        return repr(value).replace("'", '"') if match.group(0) == "%q" else _fmt(value)

    return re.sub(r"%[svdq%]", sub, fmt)


def _slice(value: Any, *bounds: int) -> Any:
    if len(bounds) > 2:
        raise GoTemplateError("slice with 3 indices is not supported")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(value)
    if not 0 <= start <= end <= len(value):
        raise GoTemplateError(f"slice bounds out of range [{start}:{end}] with length {len(value)}")
    return value[start:end]


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (IndexError, KeyError, TypeError):
            raise GoTemplateError(f"index {key!r} out of range") from None
    return value


_FUNCS: dict[str, Callable[..., Any]] = {
    "not": lambda x: not truth(x),
    "len": lambda x: len(x),
    "index": _index,
    "slice": _slice,
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "print": lambda *xs: "".join(_fmt(x) for x in xs),
    "println": lambda *xs: " ".join(_fmt(x) for x in xs) + "\n",
    "printf": _printf,
    # Ollama's own functions (template/template.go): dates in Go's "2006-01-02" layout, whatever argument
    "json": lambda v: _json.dumps(v, separators=(",", ":"), ensure_ascii=False),
    "currentDate": lambda *_args: _date.today().isoformat(),
    "yesterdayDate": lambda *_args: (_date.today() - _timedelta(days=1)).isoformat(),
}


class GoMap(dict):
    """A Go ``map[string]any`` executed with ``missingkey=zero`` (Ollama's top-level values): a missing key
    reads as nil ("<no value>", false), where a missing field of a struct (a plain dict here) is an error."""


def _get(value: Any, names: list[str]) -> Any:
    for name in names:
        if isinstance(value, GoMap) and name not in value:
            value = None
            continue
        if isinstance(value, Mapping):
            if name not in value:
                raise GoTemplateError(f"can't evaluate field {name}")
            value = value[name]
        elif hasattr(value, name):
            value = getattr(value, name)
        else:
            raise GoTemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


class _Exec:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.scopes: list[dict[str, Any]] = [{"$": root}]
        self.out: list[str] = []

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise GoTemplateError(f"undefined variable: {name}")

    def set(self, name: str, value: Any) -> None:
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise GoTemplateError(f"undefined variable: {name}")

    def operand(self, op: Any, dot: Any) -> Any:
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "field":
            return _get(dot, op[1])
        if kind == "var":
            return _get(self.lookup(op[1]), op[2])
        if kind == "pipe":
            return self.pipe(op[1], dot)
        if kind == "fieldof":
            return _get(self.operand(op[1], dot), op[2])
        if kind == "func":
            return self.call(op[1], [], dot)
        raise GoTemplateError(f"bad operand {op!r}")

    def call(self, name: str, args: list[Any], dot: Any, piped: tuple[Any, ...] = ()) -> Any:
        if name in ("and", "or"):  # short-circuit like Go >= 1.18
            values = [*args, *[("lit", p) for p in piped]]
            if not values:
                raise GoTemplateError(f"{name} needs arguments")
            result: Any = None
            for arg in values:
                result = self.operand(arg, dot)
                if truth(result) != (name == "and"):
                    return result
            return result
        func = _FUNCS.get(name)
        if func is None:
            raise GoTemplateError(f'function "{name}" not defined')
        return func(*[self.operand(a, dot) for a in args], *piped)

    def pipe(self, pipe: Pipe, dot: Any) -> Any:
        value: Any = None
        for number, cmd in enumerate(pipe.cmds):
            piped = (value,) if number else ()
            head = cmd[0]
            if head[0] == "func":
                value = self.call(head[1], cmd[1:], dot, piped)
            elif len(cmd) == 1 and not piped:
                value = self.operand(head, dot)
            else:
                raise GoTemplateError("can't give arguments to a non-function")
        if pipe.decl:
            if pipe.assign:
                self.set(pipe.decl[0], value)
            else:
                self.scopes[-1][pipe.decl[-1]] = value
        return value

    def run(self, nodes: list[Node], dot: Any) -> None:
        for node in nodes:
            if node.kind == "text":
                self.out.append(node.text)
            elif node.kind == "action":
                assert node.pipe is not None
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(_fmt(value))
            elif node.kind == "if":
                self.scopes.append({})
                for cond, body in node.branches:
                    if truth(self.pipe(cond, dot)):
                        self.run(body, dot)
                        break
                else:
                    self.run(node.else_body, dot)
                self.scopes.pop()
            elif node.kind == "with":
                self.scopes.append({})
                cond, body = node.branches[0]
                value = self.pipe(Pipe([], False, cond.cmds), dot)
                if truth(value):
                    if cond.decl:
                        self.scopes[-1][cond.decl[-1]] = value
                    self.run(body, value)
                else:
                    self.run(node.else_body, dot)
                self.scopes.pop()
            elif node.kind == "range":
                self.range(node, dot)

    def range(self, node: Node, dot: Any) -> None:
        cond, body = node.branches[0]
        items = self.pipe(Pipe([], False, cond.cmds), dot)
        if items is None:
            items = []
        if isinstance(items, Mapping):
            pairs = sorted(items.items())
        elif isinstance(items, (list, tuple)):
            pairs = list(enumerate(items))
        else:
            raise GoTemplateError(f"range can't iterate over {type(items).__name__}")
        if not pairs:
            self.scopes.append({})
            self.run(node.else_body, dot)
            self.scopes.pop()
            return
        for key, item in pairs:
            scope: dict[str, Any] = {}
            if len(cond.decl) == 1:
                scope[cond.decl[0]] = item
            elif len(cond.decl) == 2:
                scope[cond.decl[0]], scope[cond.decl[1]] = key, item
            self.scopes.append(scope)
            self.run(body, item)
            self.scopes.pop()


def render_go_template(template: str, data: Any) -> str:
    """Render ``template`` with ``data`` (dicts for Go structs) the way Go's text/template would."""
    nodes, _, _ = parse(split_actions(template))
    executor = _Exec(data)
    executor.run(nodes, data)
    return "".join(executor.out)


def check_go_template(template: str) -> None:
    """Raise :class:`GoTemplateError` if the template does not parse."""
    parse(split_actions(template))


def ollama_values(messages: Sequence[Mapping[str, str]], *, system: str | None = None, think: bool | None = None,
                  thinking_capable: bool = False) -> dict[str, Any]:
    """The values Ollama's chat endpoint hands a template, built the way Ollama builds them.

    Ollama prepends the Modelfile SYSTEM when the request has no system message, then *collates*
    (template.go ``collate``): consecutive messages of the same role are joined with a blank line, and
    ``.System`` is all system messages joined the same way. ``.Messages`` keeps the system messages too;
    each message carries ``.Thinking`` (a message's ``thinking`` field: Ollama's parser puts a thinking
    model's reasoning there instead of in ``.Content``).

    ``think`` is the request's ``think`` flag (None: not sent). A model whose TEMPLATE shows
    ``.Thinking`` inside ``range .Messages`` has Ollama's thinking capability, and Ollama then turns an
    unset flag into ``think: true`` (server/routes.go); ``.IsThinkSet`` tells whether the flag is set.
    A model without the capability rejects ``think: true``, so that is a :class:`GoTemplateError` here.
    """
    if thinking_capable and think is None:
        think = True
    if think and not thinking_capable:
        raise GoTemplateError("Ollama refuses think=true for a model whose TEMPLATE has no thinking capability")
    msgs = [dict(m) for m in messages]
    if system and (not msgs or msgs[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    systems: list[str] = []
    collated: list[dict[str, Any]] = []
    for msg in msgs:
        role, content = msg.get("role", ""), msg.get("content", "")
        if role == "system":
            systems.append(content)
        if collated and collated[-1]["Role"] == role and role != "tool":
            collated[-1]["Content"] += "\n\n" + content
        else:
            collated.append({"Role": role, "Content": content, "Thinking": msg.get("thinking", ""), "Images": None,
                             "ToolCalls": None, "ToolName": "", "ToolCallID": ""})
    return GoMap(System="\n\n".join(systems), Messages=collated, Tools=None, Response="", Think=bool(think),
                 ThinkLevel="", IsThinkSet=think is not None)
