"""Tool definitions and tool calls, normalised to the shapes Hugging Face chat templates read.

Users bring tool data in two shapes:

* OpenAI: a record-level ``tools`` list of ``{"type": "function", "function": {name, description,
  parameters}}``, assistant messages with ``tool_calls`` (``arguments`` a JSON *string*), and
  ``{"role": "tool", "tool_call_id": ..., "name": ..., "content": ...}`` results;
* LLaMA-Factory's ShareGPT/glaive shape: ``tools`` a JSON string of bare function descriptions, a
  ``function_call`` turn whose value is a JSON string ``{"name": ..., "arguments": ...}`` (or a list of
  them), and an ``observation`` turn holding the result.

Both become: ``tools`` = list of OpenAI tool dicts (bare descriptions wrapped the way LLaMA-Factory wraps
them), and assistant ``tool_calls`` = ``[{"type": "function", "function": {"name": str, "arguments":
dict}}]`` (plus ``"id"`` when the data has one). Arguments are decoded to a dict because templates such
as Qwen's apply ``tojson`` to them: a string would be rendered as a quoted, escaped string.
"""

from __future__ import annotations

import json
from typing import Any

from ftwiz.core.data.records import RecordProblem


def _decode(value: Any, field: str, what: str) -> Any:
    """JSON-decode ``value`` when it is a string; RecordProblem naming ``field`` when it is not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise RecordProblem("bad_tool_json", f"'{field}' is not valid JSON {what}: {exc.msg} at column {exc.colno}",
                            field) from None


def parse_tools(value: Any, field: str = "tools") -> list[dict[str, Any]] | None:
    """A record's tool definitions -> list of OpenAI tool dicts, or None when there are none.

    Accepts a list or a JSON string of one; an empty value ("", "[]", null) means no tools.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    tools = _decode(value, field, "(a list of tool definitions)")
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        raise RecordProblem("bad_tools", f"'{field}' must be a list of tool definitions, got {type(tools).__name__}",
                            field)
    out = []
    for i, tool in enumerate(tools):
        where = f"{field}[{i}]"
        if not isinstance(tool, dict):
            raise RecordProblem("bad_tools", f"{where} must be an object describing a function", where)
        if isinstance(tool.get("function"), dict):
            function = tool["function"]
            tool = {"type": "function", **tool}
        else:  # a bare description (glaive / LLaMA-Factory): wrap it as LLaMA-Factory's tool formatters do
            function = tool
            tool = {"type": "function", "function": tool}
        if not isinstance(function.get("name"), str) or not function["name"].strip():
            raise RecordProblem("bad_tools", f"{where} has no function 'name'", where)
        out.append(tool)
    return out or None


def parse_tool_call(call: Any, field: str) -> dict[str, Any]:
    """One call in OpenAI (``{"type", "function": {...}}``) or flat (``{"name", "arguments"}``) shape."""
    if not isinstance(call, dict):
        raise RecordProblem("bad_tool_call", f"{field} must be an object with a function name and arguments", field)
    function = call.get("function", call)
    if not isinstance(function, dict):
        raise RecordProblem("bad_tool_call", f"{field}.function must be an object", f"{field}.function")
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RecordProblem("bad_tool_call", f"{field} has no function 'name'", f"{field}.name")
    arguments = function.get("arguments", function.get("parameters", {}))
    arguments = {} if arguments is None or arguments == "" else _decode(arguments, f"{field}.arguments", "(arguments)")
    if not isinstance(arguments, dict):
        raise RecordProblem("bad_tool_call", f"{field}.arguments must be an object of named arguments, "
                            f"got {type(arguments).__name__}", f"{field}.arguments")
    out: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return out


def parse_tool_calls(value: Any, field: str) -> list[dict[str, Any]]:
    """An OpenAI ``tool_calls`` list, or a glaive ``function_call`` value (JSON string, object or list)."""
    calls = _decode(value, field, "(a function call)")
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list) or not calls:
        raise RecordProblem("bad_tool_call", f"'{field}' must hold at least one function call", field)
    return [parse_tool_call(call, f"{field}[{i}]" if len(calls) > 1 or isinstance(value, list) else field)
            for i, call in enumerate(calls)]
