"""Remove ``<think>`` reasoning from assistant answers when a thinking template is used with thinking off.

With ``enable_thinking: false`` a thinking template (Qwen3's own, ``template: qwen3``) serves every answer
after the empty block ``<think>\\n\\n</think>\\n\\n`` in the generation prompt. Qwen3's own template keeps
the last turn's thought when rendering a training conversation, so a record whose answer carries
``<think>…</think>`` would teach the model to write thoughts it is never prompted for (and the learned
span would begin inside the think block). LLaMA-Factory's ReasoningTemplate removes the thought in that
case; so does ftwiz: the answer is trained as ``apply_chat_template`` renders it without the thought, and
the text before it is exactly the served prompt.

The rule is the one Qwen3's template applies to earlier turns (and ``template: qwen3`` to every turn):
everything up to the last ``</think>`` goes, then leading newlines; a ``reasoning_content`` field goes too.

A thought in its own field (``reasoning_content``) reaches the template as ``apply_chat_template`` passes it;
a template that never reads that field would drop it without a word, so such a record is refused
(:func:`unrendered_reasoning`) instead of training an answer without the thought the data holds.
"""

from __future__ import annotations

import re
from typing import Any

THINK_CLOSE = "</think>"
# An assistant message's separate thought, under the names chat templates read it by: Qwen3's and GLM's
# ``reasoning_content``, gpt-oss's ``thinking``, and ``reasoning`` (what OpenAI-compatible servers return).
REASONING_KEYS = ("reasoning_content", "thinking", "reasoning")


def drops_reasoning(template: str, template_kwargs: dict[str, Any] | None) -> bool:
    """True when ``template`` is a thinking template (it writes ``</think>``) and thinking is off."""
    return bool(template_kwargs) and template_kwargs.get("enable_thinking") is False and THINK_CLOSE in template


def without_thought(content: str) -> str:
    """``"<think>\\nWhy.\\n</think>\\n\\nAnswer"`` -> ``"Answer"``; content without ``</think>`` unchanged."""
    return content.split(THINK_CLOSE)[-1].lstrip("\n") if THINK_CLOSE in content else content


def strip_reasoning(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """(messages with every assistant thought removed, whether any was removed); inputs are not changed."""
    removed = False
    out = []
    for message in messages:
        content = message.get("content")
        thought = isinstance(content, str) and THINK_CLOSE in content
        if message.get("role") != "assistant" or not (thought or any(message.get(k) for k in REASONING_KEYS)):
            out.append(message)
            continue
        removed = True
        message = {k: v for k, v in message.items() if k not in REASONING_KEYS}
        if thought:
            message["content"] = without_thought(content)
        out.append(message)
    return out, removed


def preference_answers(record: dict[str, Any], template: str | None,
                       template_kwargs: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """A preference record (``messages`` + ``chosen``/``rejected``) as the preference stages train it:
    with ``drops_reasoning``, thoughts removed from the prompt's answers and from both answers, by the
    rule SFT applies; (record, whether any thought was removed). Inputs are not changed."""
    if template is None or not drops_reasoning(template, template_kwargs):
        return record, False
    messages, removed = strip_reasoning(list(record.get("messages") or []))
    out = dict(record, messages=messages)
    for key in ("chosen", "rejected"):
        answer = record.get(key)
        if isinstance(answer, str) and THINK_CLOSE in answer:
            out[key], removed = without_thought(answer), True
    return out, removed


def training_messages(messages: list[dict[str, Any]], template: str,
                      template_kwargs: dict[str, Any] | None) -> tuple[list[dict[str, Any]], bool]:
    """The messages training renders: reasoning removed when ``drops_reasoning``; (messages, removed)."""
    if not drops_reasoning(template, template_kwargs):
        return messages, False
    return strip_reasoning(messages)


def reads_field(template: str, key: str) -> bool:
    """True when ``template`` reads a message's ``key`` (``message.key``, ``message['key']``, ``'key' in ...``).

    A bare substring is not enough: Qwen3's template holds ``reasoning_content`` and ``enable_thinking``, so the
    words ``reasoning`` and ``thinking`` appear in it, yet a ``reasoning`` or ``thinking`` field is never read.
    """
    return re.search(rf"\.\s*{key}(?!\w)|['\"]{key}['\"]", template) is not None


def unrendered_reasoning(template: str, messages: list[dict[str, Any]],
                         passed: list[dict[str, Any]] | None = None) -> str | None:
    """``"messages[3].reasoning_content"`` for the first assistant thought that reaches ``template`` under no
    field it reads (:func:`reads_field`), else None. ``passed``: the messages as the template receives them,
    one per message (transformers 5 copies a ``thinking`` or ``reasoning`` field to ``reasoning_content`` and
    ``thinking``); default ``messages``. A template that reads the field and still leaves a thought out (Qwen3
    drops thoughts before the last user turn) does so by design and is followed."""
    for i, message in enumerate(messages):
        keys = [key for key in REASONING_KEYS if message.get(key)]
        if message.get("role") != "assistant" or not keys:
            continue
        given = (passed or messages)[i]
        if not any(given.get(key) and reads_field(template, key) for key in REASONING_KEYS):
            return f"messages[{i}].{keys[0]}"
    return None


def reasoning_fix(template: str) -> str:
    """What to do with a thought the template does not read: rename the field to one it reads, if any."""
    read = [key for key in REASONING_KEYS if reads_field(template, key)]
    if read:
        return f"rename the field to {read[0]!r}, the one this model's chat template reads"
    return ("write the reasoning into the answer as <think>...</think> before the answer, or use a model whose "
            "template reads the field (Qwen3's reads reasoning_content)")
