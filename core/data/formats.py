"""Record formats: detect which one a file uses (and say why), and normalise records to messages.

Supported: Alpaca (instruction/input/output, optional system and history), ShareGPT
(conversations of from/value), OpenAI messages (role/content, tool calls), preference pairs for DPO
(prompt/chosen/rejected, or ShareGPT-style conversations + chosen/rejected) and plain text. Column
names can be mapped, using our names or LLaMA-Factory's (prompt/query/response/history/system/...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ftwiz.core.data.records import Conversation, RawRecord, RecordProblem

FORMATS = ("alpaca", "sharegpt", "openai", "dpo", "text")
# LLaMA-Factory's column names -> ours, so a dataset_info.json "columns" block works unchanged.
LF_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "messages": "conversations"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "function_call": "assistant", "observation": "tool", "tool": "tool"}
OPENAI_ROLES = {"system", "user", "assistant", "tool", "developer"}


def apply_columns(data: Any, columns: Mapping[str, str] | None) -> Any:
    """Rename the user's columns to ours (``columns`` maps our name or LF's name -> their column)."""
    if not columns or not isinstance(data, dict):
        return data
    renamed = dict(data)
    for ours, theirs in columns.items():
        ours = LF_COLUMNS.get(ours, ours)
        if theirs in data and theirs != ours:
            renamed[ours] = renamed.pop(theirs)
    return renamed


def detect_format(samples: list[Any]) -> tuple[str, str]:
    """Return (format, reason) from the keys of the first records."""
    dicts = [s for s in samples if isinstance(s, dict)]
    if not dicts:
        return "text", "no record is a JSON object; treating lines as plain text"
    keys = set(dicts[0])
    for other in dicts[1:5]:
        keys &= set(other)
    if "chosen" in keys and "rejected" in keys:
        return "dpo", "records have 'chosen' and 'rejected' (a preference dataset)"
    if "messages" in keys:
        return "openai", "records have a 'messages' list of role/content"
    if "conversations" in keys:
        return "sharegpt", "records have a 'conversations' list of from/value"
    if "instruction" in keys and "output" in keys:
        return "alpaca", "records have 'instruction' and 'output'"
    if "text" in keys:
        return "text", "records have only a 'text' field (continued pre-training)"
    raise RecordProblem(
        "unknown_format",
        f"cannot tell the format from the keys {sorted(keys)}",
        field=None,
    )


def _text(value: Any, field: str, *, required: bool = True) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            reason = "missing_field" if value is None else "empty_field"
            raise RecordProblem(reason, f"'{field}' is {'missing' if value is None else 'empty'}", field)
        return ""
    if not isinstance(value, str):
        raise RecordProblem("non_string_content", f"'{field}' must be text, got {type(value).__name__}", field)
    return value


def _alpaca(data: dict) -> Conversation:
    messages: list[dict[str, str]] = []
    system = _text(data.get("system"), "system", required=False)
    if system:
        messages.append({"role": "system", "content": system})
    history = data.get("history") or []
    if not isinstance(history, list):
        raise RecordProblem("bad_history", "'history' must be a list of [user, assistant] pairs", "history")
    for turn, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RecordProblem("bad_history", f"history[{turn}] must be a [user, assistant] pair", f"history[{turn}]")
        messages.append({"role": "user", "content": _text(pair[0], f"history[{turn}][0]")})
        messages.append({"role": "assistant", "content": _text(pair[1], f"history[{turn}][1]")})
    instruction = _text(data.get("instruction"), "instruction")
    extra = _text(data.get("input"), "input", required=False)
    messages.append({"role": "user", "content": f"{instruction}\n\n{extra}" if extra else instruction})
    output = data.get("output")
    if isinstance(output, str) and not output.strip():
        raise RecordProblem("empty_assistant_turn", "'output' (the answer to learn) is empty", "output")
    messages.append({"role": "assistant", "content": _text(output, "output")})
    return Conversation(messages)


def _sharegpt_turns(turns: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(turns, list) or not turns:
        raise RecordProblem("missing_field" if turns is None else "empty_field",
                            f"'{field}' must be a non-empty list of turns", field)
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordProblem("not_an_object", f"{field}[{i}] must be an object with from/value", f"{field}[{i}]")
        role_name = turn.get("from", turn.get("role"))
        if role_name not in SHAREGPT_ROLES:
            raise RecordProblem("unknown_role", f"{field}[{i}].from is {role_name!r}; expected one of "
                                f"{sorted(SHAREGPT_ROLES)}", f"{field}[{i}].from")
        content = turn.get("value", turn.get("content"))
        messages.append({"role": SHAREGPT_ROLES[role_name], "content": _text(content, f"{field}[{i}].value",
                                                                             required=False)})
    return messages


def _openai_content(content: Any, field: str, message: dict) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        content = "".join(texts)
    if content is None and message.get("tool_calls"):
        return json.dumps(message["tool_calls"], ensure_ascii=False)
    return _text(content, field, required=False)


def _openai(data: dict) -> Conversation:
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RecordProblem("missing_field" if raw is None else "empty_field",
                            "'messages' must be a non-empty list", "messages")
    messages = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise RecordProblem("not_an_object", f"messages[{i}] must be an object", f"messages[{i}]")
        role = message.get("role")
        if role not in OPENAI_ROLES:
            raise RecordProblem("unknown_role", f"messages[{i}].role is {role!r}", f"messages[{i}].role")
        content = _openai_content(message.get("content"), f"messages[{i}].content", message)
        messages.append({"role": "system" if role == "developer" else role, "content": content})
    return Conversation(messages)


def _dpo(data: dict) -> Conversation:
    if "conversations" in data:
        prompt = _sharegpt_turns(data["conversations"], "conversations")
    elif isinstance(data.get("messages"), list):
        prompt = _openai({"messages": data["messages"]}).messages
    else:
        prompt = [{"role": "user", "content": _text(data.get("prompt", data.get("instruction")), "prompt")}]

    def answer(key: str) -> str:
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("value", value.get("content"))
        if isinstance(value, list) and value and isinstance(value[-1], dict):
            value = value[-1].get("content", value[-1].get("value"))
        return _text(value, key)

    return Conversation(prompt, chosen=answer("chosen"), rejected=answer("rejected"))


def normalise(record: RawRecord, fmt: str) -> Conversation:
    data = record.data
    if fmt == "text":
        if isinstance(data, str):
            return Conversation([{"role": "text", "content": _text(data, "text")}])
        if not isinstance(data, dict):
            raise RecordProblem("not_an_object", "record must be an object with 'text'")
        return Conversation([{"role": "text", "content": _text(data.get("text"), "text")}])
    if not isinstance(data, dict):
        raise RecordProblem("not_an_object", f"record must be a JSON object, got {type(data).__name__}")
    if fmt == "alpaca":
        return _alpaca(data)
    if fmt == "sharegpt":
        return Conversation(_sharegpt_turns(data.get("conversations"), "conversations"))
    if fmt == "openai":
        return _openai(data)
    if fmt == "dpo":
        return _dpo(data)
    raise ValueError(f"unknown format {fmt!r}")
