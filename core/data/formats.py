"""Record formats: detect which one a file uses (and say why), and normalise records to messages.

Supported: Alpaca (instruction/input/output, optional system, history and tools), ShareGPT
(conversations of from/value, optional system and tools; function_call/observation turns as in
LLaMA-Factory's glaive data), OpenAI messages (role/content, tool_calls, tool results, tools, an assistant
message's ``weight`` 0/1 as in OpenAI's fine-tuning format), preference
pairs for DPO (prompt/chosen/rejected, ShareGPT-style conversations + chosen/rejected, and TRL's conversational
shapes: a prompt of messages, an implicit prompt, ultrafeedback_binarized's) and plain text.
Column names can be mapped, using our names or LLaMA-Factory's (prompt/query/response/history/system/
tools/images...). Records with images, videos or audio are refused by name (text-only training).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ftwiz.core.data.reasoning import REASONING_KEYS
from ftwiz.core.data.records import Conversation, RawRecord, RecordProblem
from ftwiz.core.data.tool_calls import parse_tool_calls, parse_tools

FORMATS = ("alpaca", "sharegpt", "openai", "dpo", "text")
# Where a normalised message came from in the record (its path, its text's path); moved to Conversation.fields.
AT = "\x00at"
# LLaMA-Factory's column names -> ours, so a dataset_info.json "columns" block works unchanged.
LF_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "messages": "conversations"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "function_call": "assistant", "observation": "tool", "tool": "tool"}
# OpenAI's deprecated "function" role is a tool result; "developer" is o1's name for system.
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
                "tool": "tool", "function": "tool"}
# LLaMA-Factory's multimodal columns: ftwiz trains text-only models, so such records are refused by name.
MEDIA_COLUMNS = {"images": "image", "videos": "video", "audios": "audio"}
MEDIA_PARTS = {"image", "image_url", "input_image", "video", "video_url", "audio", "input_audio", "audio_url"}
_SHAPE_WHY = {
    "dpo": "records have 'chosen' and 'rejected' (a preference dataset)",
    "openai": "records have a 'messages' list of role/content",
    "sharegpt": "records have a 'conversations' list of from/value",
    "alpaca": "records have 'instruction' and 'output'",
    "text": "records have only a 'text' field (continued pre-training)",
}


def apply_columns(data: Any, columns: Mapping[str, str] | None, fmt: str = "auto") -> Any:
    """Rename the user's columns to ours (``columns`` maps our name or LF's name -> their column).

    A mapped column missing from this record leaves our field absent, as in LLaMA-Factory (its value is None
    there): the record's own field of our name is not used in its place (core/data/column_map.py has the rule).
    ``fmt``: the format the user set; under ``openai`` a ``messages`` mapping names that format's own field, not
    LLaMA-Factory's ShareGPT column (renamed to ``conversations``, the openai reader rejected every record).
    """
    if not columns or not isinstance(data, dict):
        return data
    mapping = {(ours if fmt == "openai" and ours == "messages" else LF_COLUMNS.get(ours, ours)): theirs
               for ours, theirs in columns.items()}
    renamed = {key: value for key, value in data.items() if key not in mapping.values() or key in mapping}
    for ours, theirs in mapping.items():
        if theirs in data:
            renamed[ours] = data[theirs]
        else:
            renamed.pop(ours, None)
    return renamed


def _shape(keys: set[str]) -> str | None:
    if "chosen" in keys and "rejected" in keys:
        return "dpo"
    if "messages" in keys:
        return "openai"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys and "output" in keys:
        return "alpaca"
    if "text" in keys:
        return "text"
    return None


def detect_format(samples: list[Any]) -> tuple[str, str]:
    """Return (format, reason) from the keys of the first records; the most common shape wins.

    One odd record (a typo'd key, a stray object) does not decide the format for the whole file: it is
    rejected later with its own line. Raises RecordProblem("unknown_format") naming the keys seen.
    """
    dicts = [s for s in samples if isinstance(s, dict)]
    if not dicts:
        return "text", "no record is a JSON object; treating lines as plain text"
    votes = Counter(_shape(set(d)) for d in dicts)
    votes.pop(None, None)
    if not votes:
        seen = Counter(key for d in dicts for key in d)
        raise RecordProblem("unknown_format", f"cannot tell the format from the keys {sorted(seen)}", field=None)
    order = list(_SHAPE_WHY)
    fmt = max(votes, key=lambda f: (votes[f], -order.index(f)))
    why = _SHAPE_WHY[fmt]
    if votes[fmt] < len(dicts):
        why += f": {votes[fmt]} of the first {len(dicts)} records"
    return fmt, why


def _text(value: Any, field: str, *, required: bool = True) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            reason = "missing_field" if value is None else "empty_field"
            raise RecordProblem(reason, f"'{field}' is {'missing' if value is None else 'empty'}", field)
        return ""
    if not isinstance(value, str):
        raise RecordProblem("non_string_content", f"'{field}' must be text, got {type(value).__name__}", field)
    return value


def _require(data: dict, *keys: str) -> None:
    """A missing main column is usually a differently named one: say which keys the record has."""
    for key in keys:
        if key not in data:
            raise RecordProblem("missing_field", f"'{key}' is missing (the record has {sorted(data)}); if your "
                                f"column has another name, map it with --column {key}=YOUR_COLUMN", key)


def _refuse_media(data: dict) -> None:
    """Images/videos/audio (LLaMA-Factory's multimodal columns) cannot be trained into a text model."""
    for key, kind in MEDIA_COLUMNS.items():
        value = data.get(key)
        if value not in (None, "", [], {}):
            raise RecordProblem(f"{kind}s_not_supported",
                                f"'{key}' holds {kind} data, but ftwiz fine-tunes text-only models: {kind} records "
                                f"cannot be trained; remove the '{key}' column (and the <{kind}> markers) or "
                                f"leave these records out", key)


def _with_system(messages: list[dict[str, Any]], data: dict) -> list[dict[str, Any]]:
    """Put a record-level ``system`` first, unless the turns start with their own system turn.

    As in LLaMA-Factory, a system turn inside the conversation overrides the system column. An empty
    system (column or turn) means "none", so the template's default applies, not an empty system block.
    """
    if messages and messages[0]["role"] == "system":
        return messages if messages[0]["content"].strip() else messages[1:]
    system = _text(data.get("system"), "system", required=False)
    return [{"role": "system", "content": system, AT: ("system", "system")}, *messages] if system else messages


def _history(value: Any) -> list:
    if isinstance(value, str) and value.strip().startswith("["):  # a CSV cell holding JSON
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RecordProblem("bad_history", f"'history' is not valid JSON: {exc.msg}", "history") from None
    history = value or []
    if not isinstance(history, list):
        raise RecordProblem("bad_history", "'history' must be a list of [user, assistant] pairs", "history")
    return history


def _alpaca_prompt(data: dict, instruction_key: str = "instruction") -> list[dict[str, Any]]:
    """History pairs, then the user turn: instruction, and input (when any) on the next line.

    One newline, as LLaMA-Factory's Alpaca converter joins them (``"\\n".join([instruction, input])``),
    so a recipe ported from it trains on the same text."""
    messages: list[dict[str, Any]] = []
    for turn, pair in enumerate(_history(data.get("history"))):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RecordProblem("bad_history", f"history[{turn}] must be a [user, assistant] pair", f"history[{turn}]")
        messages.append({"role": "user", "content": _text(pair[0], f"history[{turn}][0]"),
                         AT: (f"history[{turn}]", f"history[{turn}][0]")})
        messages.append({"role": "assistant", "content": _text(pair[1], f"history[{turn}][1]"),
                         AT: (f"history[{turn}]", f"history[{turn}][1]")})
    instruction = _text(data.get(instruction_key), instruction_key)
    extra = _text(data.get("input"), "input", required=False)
    messages.append({"role": "user", "content": f"{instruction}\n{extra}" if extra else instruction,
                     AT: (instruction_key, instruction_key)})
    return messages


def _alpaca(data: dict) -> Conversation:
    messages = _alpaca_prompt(data)
    output = data.get("output")
    if isinstance(output, str) and not output.strip():
        raise RecordProblem("empty_assistant_turn", "'output' (the answer to learn) is empty", "output")
    messages.append({"role": "assistant", "content": _text(output, "output"), AT: ("output", "output")})
    return Conversation(_with_system(messages, data), tools=parse_tools(data.get("tools")))


def _content(content: Any, field: str) -> str:
    """Message content as text: a string, null (-> ""), or OpenAI content parts (text parts joined)."""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            kind = part.get("type", "text") if isinstance(part, dict) else None
            if kind in MEDIA_PARTS:
                media = next(m for m in MEDIA_COLUMNS.values() if m in kind)
                raise RecordProblem(f"{media}s_not_supported", f"{field}[{i}] is a '{kind}' part, but ftwiz "
                                    "fine-tunes text-only models: leave these records out or keep only their text "
                                    "parts", f"{field}[{i}]")
            if kind != "text" or not isinstance(part.get("text"), str):
                raise RecordProblem("non_string_content", f"{field}[{i}] must be a text part "
                                    '({"type": "text", "text": ...})', f"{field}[{i}]")
            texts.append(part["text"])
        return "".join(texts)
    return _text(content, field, required=False)


def _message(role: str, source: dict, content: Any, field: str, content_key: str = "content") -> dict[str, Any]:
    """One normalised message; keeps tool calls (assistant) and tool_call_id/name (tool results)."""
    message: dict[str, Any] = {"role": role, "content": _content(content, f"{field}.{content_key}"),
                               AT: (field, f"{field}.{content_key}")}
    if role == "assistant":
        if "weight" in source:  # OpenAI's fine-tuning format: 0 = context only, 1 = learned (the default)
            weight = source["weight"]
            if isinstance(weight, bool) or weight not in (0, 1):
                raise RecordProblem("bad_weight", f"{field}.weight must be 0 (not learned) or 1 (learned), got "
                                    f"{weight!r}", f"{field}.weight")
            message["weight"] = int(weight)
        for key in REASONING_KEYS:  # a thought a thinking template renders (Qwen3's <think>): kept, never dropped
            thought = _text(source.get(key), f"{field}.{key}", required=False)
            if thought:
                message[key] = thought
        calls = source.get("tool_calls") or source.get("function_call")  # function_call: OpenAI's older shape
        if calls:
            key = "tool_calls" if source.get("tool_calls") else "function_call"
            message["tool_calls"] = parse_tool_calls(calls, f"{field}.{key}")
    elif role == "tool":
        for key in ("tool_call_id", "name"):
            value = source.get(key)
            if value is not None and not isinstance(value, str):
                raise RecordProblem("non_string_content", f"{field}.{key} must be text", f"{field}.{key}")
            if value:
                message[key] = value
    return message


def _sharegpt_turns(turns: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(turns, list) or not turns:
        raise RecordProblem("missing_field" if turns is None else "empty_field",
                            f"'{field}' must be a non-empty list of turns", field)
    messages = []
    for i, turn in enumerate(turns):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RecordProblem("not_an_object", f"{where} must be an object with from/value", where)
        role_name = turn.get("from", turn.get("role"))
        if role_name not in SHAREGPT_ROLES:
            if "from" not in turn and "role" not in turn:  # other key names (speaker/text): LLaMA-Factory's tags
                raise RecordProblem("missing_field", f"{where} has no 'from' (its keys: {', '.join(map(str, turn))}); "
                                    f"a turn is from/value (or role/content); name yours in dataset_info.json's "
                                    f'"tags" (e.g. {{"role_tag": "speaker", "content_tag": "text"}}), as in '
                                    "LLaMA-Factory", f"{where}.from")
            raise RecordProblem("unknown_role", f"{where}.from is {role_name!r}; expected one of "
                                f"{sorted(SHAREGPT_ROLES)} (other role names: dataset_info.json's \"tags\", e.g. "
                                '{"user_tag": "me", "assistant_tag": "bot"})', f"{where}.from")
        value = turn.get("value", turn.get("content"))
        if role_name == "function_call":  # glaive: the value is the call as JSON, learned as the assistant's turn
            messages.append({"role": "assistant", "content": "", AT: (where, f"{where}.value"),
                             "tool_calls": parse_tool_calls(value, f"{where}.value")})
            continue
        messages.append(_message(SHAREGPT_ROLES[role_name], turn, value, where,
                                 "value" if "value" in turn else "content"))
    return messages


def _sharegpt(data: dict) -> Conversation:
    messages = _sharegpt_turns(data.get("conversations"), "conversations")
    return Conversation(_with_system(messages, data), tools=parse_tools(data.get("tools")))


def _openai_messages(raw: Any, key: str = "messages") -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise RecordProblem("missing_field" if raw is None else "empty_field",
                            f"'{key}' must be a non-empty list", key)
    messages = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise RecordProblem("not_an_object", f"{key}[{i}] must be an object", f"{key}[{i}]")
        role = message.get("role")
        if role not in OPENAI_ROLES:
            raise RecordProblem("unknown_role", f"{key}[{i}].role is {role!r}; expected one of "
                                f"{sorted(OPENAI_ROLES)}", f"{key}[{i}].role")
        messages.append(_message(OPENAI_ROLES[role], message, message.get("content"), f"{key}[{i}]"))
    return messages


def _openai(data: dict) -> Conversation:
    return Conversation(_with_system(_openai_messages(data.get("messages")), data),
                        tools=parse_tools(data.get("tools")))


def _implicit_prompt(data: dict) -> list[dict[str, Any]] | None:
    """TRL's implicit prompt: ``chosen`` and ``rejected`` are whole conversations sharing every turn but the
    last; the shared turns are the prompt. None when the record has another shape."""
    chosen, rejected = data.get("chosen"), data.get("rejected")
    if any(k in data for k in ("prompt", "instruction", "messages")) or not (
            isinstance(chosen, list) and isinstance(rejected, list) and len(chosen) >= 2 and len(rejected) >= 2):
        return None
    def turns(side: list) -> list:
        return [(m.get("role"), m.get("content")) if isinstance(m, dict) else m for m in side[:-1]]
    if turns(chosen) != turns(rejected):
        raise RecordProblem("bad_pair", "'chosen' and 'rejected' are conversations whose turns before the answer "
                            "differ; TRL's implicit prompt needs the same turns in both", "rejected")
    return _openai_messages(chosen[:-1], "chosen")


def _dpo(data: dict) -> Conversation:
    implicit = _implicit_prompt(data)
    if implicit is not None:
        prompt = implicit
    elif "conversations" in data:
        prompt = _sharegpt_turns(data["conversations"], "conversations")
    elif isinstance(data.get("prompt"), list):  # TRL's explicit conversational prompt
        prompt = _openai_messages(data["prompt"], "prompt")
    elif isinstance(data.get("messages"), list):
        prompt = _openai_messages(data["messages"])
        chosen = data.get("chosen")
        if (prompt and prompt[-1]["role"] == "assistant" and isinstance(chosen, list) and chosen
                and isinstance(chosen[-1], dict) and chosen[-1].get("content") == prompt[-1]["content"]):
            prompt = prompt[:-1]  # ultrafeedback_binarized: ``messages`` is the chosen conversation
    else:  # Alpaca-style pairs (LLaMA-Factory's ranking datasets): input and history are part of the prompt
        prompt = _alpaca_prompt(data, "prompt" if "prompt" in data else "instruction")

    def answer(key: str) -> str:
        value, field = data.get(key), key
        if isinstance(value, list) and value and isinstance(value[-1], dict):
            value, field = value[-1], f"{key}[{len(value) - 1}]"
        if isinstance(value, dict):
            _refuse_separate_thought(value, field)
            value = value.get("value", value.get("content"))
        return _text(value, key)

    return Conversation(_with_system(prompt, data), chosen=answer("chosen"), rejected=answer("rejected"),
                        tools=parse_tools(data.get("tools")))


def _refuse_separate_thought(message: dict, field: str) -> None:
    """A preference answer is trained as its text alone: a thought beside it would be dropped without a word."""
    for key in REASONING_KEYS:
        if message.get(key):
            raise RecordProblem("reasoning_not_supported", f"{field}.{key} holds the answer's reasoning, which "
                                "preference training cannot carry beside the answer: write it into the answer as "
                                "<think>...</think> before the answer text", f"{field}.{key}")


def _kto_label(data: dict) -> bool | None:
    """KTO's desirable/undesirable mark on the record's last answer: LLaMA-Factory's ``kto_tag`` column (strict),
    or TRL's boolean ``label`` (a ``label`` that is not true/false belongs to the user's data and is ignored)."""
    if "kto_tag" in data:
        value = data["kto_tag"]
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise RecordProblem("bad_label", f"'kto_tag' must be true or false, got {value!r}", "kto_tag")
        return value
    value = data.get("label")
    return value if isinstance(value, bool) else None


def normalise(record: RawRecord, fmt: str) -> Conversation:
    """One raw record -> Conversation; RecordProblem (reason, message, field) for a bad record."""
    conv = _normalise(record, fmt)
    conv.fields = [m.pop(AT, None) for m in conv.messages]  # kept beside the messages, never sent to a template
    return conv


def _normalise(record: RawRecord, fmt: str) -> Conversation:
    data = record.data
    if fmt == "text":
        if isinstance(data, str):
            return Conversation([{"role": "text", "content": _text(data, "text")}])
        if not isinstance(data, dict):
            raise RecordProblem("not_an_object", "record must be an object with 'text'")
        return Conversation([{"role": "text", "content": _text(data.get("text"), "text")}])
    if not isinstance(data, dict):
        raise RecordProblem("not_an_object", f"record must be a JSON object, got {type(data).__name__}")
    _refuse_media(data)
    _require(data, *{"alpaca": ("instruction", "output"), "sharegpt": ("conversations",),
                     "openai": ("messages",)}.get(fmt, ()))
    if fmt in ("alpaca", "sharegpt", "openai"):
        conv = {"alpaca": _alpaca, "sharegpt": _sharegpt, "openai": _openai}[fmt](data)
        conv.label = _kto_label(data)
        return conv
    if fmt == "dpo":
        return _dpo(data)
    raise ValueError(f"unknown format {fmt!r}")
