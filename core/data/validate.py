"""Conversation-level checks after normalisation: role order, empty turns, something to learn.

An assistant turn counts as something to learn when it has text or ``tool_calls`` (a tool call with
content "" is a real answer); a ``tool`` result must follow the assistant turn that called the tool.
"""

from __future__ import annotations

import re

from ftwiz.core.data.records import Conversation, RecordProblem

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def check_conversation(conv: Conversation, fmt: str) -> None:
    """Raise RecordProblem for the first problem found (the record then goes to the rejects file)."""
    messages, at = conv.messages, conv.field_of  # at(i, "content"): the user's name for it (conversations[2].value)
    if fmt == "text":
        return
    roles = [m["role"] for m in messages]
    for i, role in enumerate(roles):
        if role == "system" and i != 0:
            raise RecordProblem("roles_out_of_order", f"a system message at {at(i)}; it must come first",
                                at(i))
    body = roles[1:] if roles and roles[0] == "system" else roles
    offset = len(roles) - len(body)
    if not body or body[0] != "user":
        raise RecordProblem("roles_out_of_order", "the conversation must start with a user turn (after system)",
                            at(offset))
    previous = None
    for i, role in enumerate(body, start=offset):
        if role == previous and role in ("user", "assistant"):
            raise RecordProblem("roles_out_of_order", f"two {role} turns in a row at {at(i)}", at(i))
        if role == "assistant" and not messages[i]["content"].strip() and not messages[i].get("tool_calls"):
            raise RecordProblem("empty_assistant_turn", f"the assistant turn {at(i)} is empty: nothing to learn",
                                at(i, "content"))
        if role == "tool" and not (previous == "tool" or (previous == "assistant" and messages[i - 1].get("tool_calls"))):
            # a result nobody asked for: the model would learn to answer from a tool it never called
            raise RecordProblem("roles_out_of_order", f"the tool result {at(i)} does not follow an assistant "
                                "turn with tool_calls", at(i))
        if role == "user" and not messages[i]["content"].strip():
            raise RecordProblem("empty_field", f"the user turn {at(i)} is empty", at(i, "content"))
        previous = role
    if fmt == "dpo":
        if body[-1] != "user":
            raise RecordProblem("roles_out_of_order", "a preference prompt must end with a user turn", "conversations")
        return
    if body[-1] != "assistant":
        raise RecordProblem("no_assistant_answer", "the conversation does not end with an assistant answer",
                            at(len(roles) - 1))
    if all(m.get("weight", 1) == 0 for m in messages if m["role"] == "assistant"):  # context only: training
        raise RecordProblem("no_learned_tokens", 'every assistant message has "weight": 0 (context, not '  # drops it
                            'learned): nothing to learn; set "weight": 1 on the answer to learn',
                            at(len(roles) - 1, "weight"))


def fill_text(text: str, variables: dict[str, str]) -> tuple[str, set[str]]:
    """``text`` with its ``{{name}}`` placeholders replaced from ``variables``, and the names left unfilled."""
    missing: set[str] = set()

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        missing.add(name)
        return match.group(0)

    return PLACEHOLDER.sub(repl, text), missing


def conversation_texts(conv: Conversation) -> list[str]:
    """The texts of a conversation that :func:`fill_placeholders` fills: every message, chosen and rejected."""
    return [m["content"] for m in conv.messages] + [conv.chosen or "", conv.rejected or ""]


def conversation_placeholders(conv: Conversation) -> set[str]:
    """The ``{{name}}`` names a conversation uses, in the texts :func:`fill_placeholders` fills."""
    return {name for text in conversation_texts(conv) for name in PLACEHOLDER.findall(text)}


def fill_placeholders(conv: Conversation, variables: dict[str, str]) -> set[str]:
    """Replace ``{{name}}`` placeholders (e.g. in identity datasets); return names left unfilled."""
    missing: set[str] = set()

    def sub(text: str) -> str:
        filled, left = fill_text(text, variables)
        missing.update(left)
        return filled

    for message in conv.messages:
        message["content"] = sub(message["content"])
    if conv.chosen is not None:
        conv.chosen = sub(conv.chosen)
        conv.rejected = sub(conv.rejected or "")
    return missing
