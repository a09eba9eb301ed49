"""A system prompt for a template without a system role, placed where training placed it.

Gemma 2's published template refuses a system turn (``raise_exception('System role not supported')``).
Training then folds the system text in front of the first user turn, as LLaMA-Factory does
(``ftwiz.core.data.render.render_conversation``); chat, eval and the serve snippets send it the same way,
so the model is prompted as it was trained.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.chat_templates.render import Messages, TemplateRaised, render_chat


def fold_system(messages: Messages) -> list[dict[str, Any]] | None:
    """Gemma's convention (as LLaMA-Factory applies it): a leading system text goes in front of the first
    user turn, ``system + "\\n\\n" + user``. None when the conversation has no such shape."""
    if len(messages) < 2 or messages[0]["role"] != "system" or messages[1]["role"] != "user":
        return None
    if any(m["role"] == "system" for m in messages[1:]):
        return None
    user = dict(messages[1])
    user["content"] = f"{messages[0]['content']}\n\n{user['content']}"
    return [user, *(dict(m) for m in messages[2:])]


def as_accepted(template: str, messages: Messages, **render: Any) -> list[dict[str, Any]]:
    """``messages`` as training renders them with ``template``: unchanged when the template takes them, the
    system text folded into the first user turn when it refuses a system role but takes the folded turns.

    ``render``: :func:`render_chat`'s keywords (``bos_token``, ``eos_token``, ``enable_thinking``...).
    Raises TemplateRaised (the template's own refusal) when neither renders."""
    plain = [dict(m) for m in messages]
    try:
        render_chat(template, plain, add_generation_prompt=True, **render)
        return plain
    except TemplateRaised:
        folded = fold_system(plain)
        if folded is None:
            raise
        render_chat(template, folded, add_generation_prompt=True, **render)
        return folded
