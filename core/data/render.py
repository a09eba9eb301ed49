"""Render a conversation exactly as ``tokenizer.apply_chat_template`` does, and find what the model learns in it.

Rendering: transformers' own compiled (sandboxed, cached) Jinja template is called with what
``apply_chat_template(messages, tools=..., **template_kwargs)`` passes it (messages without None-valued
keys, ``tools``, the tokenizer's special tokens, ``enable_thinking`` and other template variables), without
its per-call normalisation, which costs more than the render itself over tens of thousands of records.

Spans: every assistant turn is located on the rendering of the *whole* conversation, the text the model is
trained on. Templates may rewrite earlier turns (Qwen3 drops ``<think>`` blocks before the last user
message; Mistral v3 moves the system text in front of the last user turn), so renders of prefixes are not
prefixes of the full text. Instead the turn is rendered a second time with its content (and tool calls)
replaced by a sentinel: the two texts agree up to where the turn's content starts and again from where it
ends, whatever the template does to the content (strips, reformats, adds tool-call JSON). The learned span
runs from the end of the generation prompt's header to the end of the content plus the end-of-turn text
(the template's closing after an assistant message, e.g. ``<|im_end|>\\n``), so the model learns to stop.

A template that closes the whole conversation with more than an inner turn's closing (Phi-3 writes
``<|end|>\\n<|endoftext|>`` after the last answer when no generation prompt follows) has that whole closing
learned by the last turn only. Served prompts end with the generation prompt, so generation stops on the
first end-of-generation token (``<|end|>`` in llama.cpp, Ollama and the vLLM export); a runtime that only
stops on the GGUF's EOS (``<|endoftext|>``) stops one token later because the model learned to write it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ftwiz.core.chat_templates.system_fold import fold_system as fold_system
from ftwiz.core.data.reasoning import reasoning_fix, unrendered_reasoning

SENTINELS = ("\ue000", "\ue001", "\ue002")  # private-use characters: never rendered by a template's own text
PROBE_USER = "ftwiz probe question"


class TemplateRefused(Exception):
    """The chat template cannot render this record (it raised, or it drops the record's tool calls).

    ``reason`` is a short stable class for rejects ("template_refused", "tools_not_supported");
    ``message`` is what a person reads, with the template's own words when it raised.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class TurnShape:
    """What a template puts around any assistant turn, measured once per template and variables.

    ``generation_prompt``: the text ``add_generation_prompt=True`` appends (e.g. ``<|im_start|>assistant\\n``,
    with ``<think>\\n\\n</think>\\n\\n`` for Qwen3 when ``enable_thinking`` is false); "" when the template
    adds none. ``end_of_turn``: what follows an assistant message's content (``<|im_end|>\\n``,
    ``<|eot_id|>``, ``</s>``); None when the probe conversation was refused by the template.
    """

    generation_prompt: str
    end_of_turn: str | None
    end_cuts: tuple[int, ...] = ()  # token boundaries inside end_of_turn: a partial match stops at one


def template_variables(tokenizer, template_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{**tokenizer.special_tokens_map, **template_kwargs}``, as apply_chat_template builds them."""
    variables = getattr(tokenizer, "_ftwiz_template_variables", None)
    if variables is None:
        variables = dict(tokenizer.special_tokens_map)
        tokenizer._ftwiz_template_variables = variables
    return {**variables, **template_kwargs} if template_kwargs else variables


def _plain(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as apply_chat_template passes them to the template: None-valued keys dropped (``content:
    null`` beside tool calls), and a thought's field copied under the other names templates read it by
    where the installed transformers does so (5.x: ``thinking`` or ``reasoning`` -> ``reasoning_content``)."""
    if not all(None not in m.values() for m in messages):
        messages = [{k: v for k, v in m.items() if v is not None} for m in messages]
    alias = _reasoning_aliaser()
    return alias(messages) if alias is not None else messages


def _reasoning_aliaser():
    """transformers' own copying of reasoning fields, or None where this transformers has none."""
    try:
        from transformers.utils.chat_template_utils import _alias_reasoning_fields
    except ImportError:
        return None
    return _alias_reasoning_fields


_COMPILER: list = []


def _compiler():
    """transformers' cached Jinja compiler (sandboxed, trim_blocks/lstrip_blocks, its filters), or None."""
    if not _COMPILER:
        try:
            from transformers.utils.chat_template_utils import _compile_jinja_template
        except ImportError:
            _compile_jinja_template = None
        _COMPILER.append(_compile_jinja_template)
    return _COMPILER[0]


def render(tokenizer, template: str, messages: list[dict[str, Any]], *, tools: list[dict] | None = None,
           template_kwargs: dict[str, Any] | None = None, generation_prompt: bool = False) -> str:
    """The text ``apply_chat_template(messages, tools=tools, tokenize=False, **template_kwargs)`` gives.

    Raises TemplateRefused with the template's own message when it raises (``raise_exception``, a type
    error on a missing field, ...).
    """
    compile_template = _compiler()
    if compile_template is None:  # a transformers without the helper: the public API, slower
        try:
            return tokenizer.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False,
                                                 add_generation_prompt=generation_prompt, **(template_kwargs or {}))
        except Exception as exc:  # noqa: BLE001 - a template error of any kind is the record's problem
            raise TemplateRefused("template_refused", f"the chat template refused this record: {exc}") from None
    try:
        return compile_template(template).render(
            messages=_plain(messages), tools=tools or None, documents=None, add_generation_prompt=generation_prompt,
            **template_variables(tokenizer, template_kwargs))
    except Exception as exc:  # noqa: BLE001 - the template's own words go to the user, never a traceback
        raise TemplateRefused("template_refused", f"the chat template refused this record: {exc}") from None


def render_conversation(tokenizer, template: str, messages: list[dict[str, Any]], *,
                        tools: list[dict] | None = None,
                        template_kwargs: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str]:
    """(the messages rendered, the full text): the system text is folded into the first user turn when the
    template refuses a system role and accepts the folded conversation; tool calls, tool results and tool
    definitions must all appear in the text, and an answer's thought in its own field (``reasoning_content``)
    must be a field the template reads. Raises TemplateRefused otherwise."""
    unread = unrendered_reasoning(template, messages, _plain(messages))
    if unread:
        raise TemplateRefused(
            "reasoning_not_supported",
            f"this model's chat template never reads {unread}, so the model would learn the answer without its "
            f"reasoning: {reasoning_fix(template)}")
    try:
        text = render(tokenizer, template, messages, tools=tools, template_kwargs=template_kwargs)
    except TemplateRefused as refused:
        folded = fold_system(messages)
        if folded is None:
            raise
        try:
            text = render(tokenizer, template, folded, tools=tools, template_kwargs=template_kwargs)
        except TemplateRefused:
            raise refused from None
        messages = folded
    _require_tools_rendered(text, messages, tools)
    return messages, text


def _require_tools_rendered(text: str, messages: list[dict[str, Any]], tools: list[dict] | None) -> None:
    """A template without tool support silently drops calls, results or definitions: refuse the record.

    Each call's function name, each tool result and each defined tool's name must occur in the text more
    often than the prompt texts alone account for (a user may write "add"; an answer may repeat "5").
    """
    prompts = [m.get("content") or "" for m in messages if m["role"] != "assistant"]

    def shown(piece: str, extra: int) -> bool:  # as written, or JSON-escaped inside a template's tojson
        needed = sum(p.count(piece) for p in prompts) + extra
        return text.count(piece) >= needed or text.count(json.dumps(piece, ensure_ascii=False)[1:-1]) >= needed

    calls: dict[str, int] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            name = (call.get("function") or call).get("name", "")
            calls[name] = calls.get(name, 0) + 1
    defined = {(tool.get("function") or tool).get("name", "") for tool in tools or ()}
    missing = [f"the call to '{name}'" for name, n in calls.items() if name and not shown(name, n)]
    missing += [f"the definition of tool '{name}'" for name in sorted(defined)
                if name and not shown(name, calls.get(name, 0) + 1)]
    if any(m["role"] == "tool" and (m.get("content") or "").strip() and not shown(m["content"].strip(), 0)
           for m in messages):
        missing.append("a tool result")
    if missing:
        raise TemplateRefused(
            "tools_not_supported",
            f"this model's chat template does not render tool use: {missing[0]} is missing from the rendered "
            "text, so the model would learn answers to tool results it never asked for")


def turn_shape(tokenizer, template: str, template_kwargs: dict[str, Any] | None = None) -> TurnShape:
    """Measure the generation prompt and the end-of-turn text on a probe conversation (cached per tokenizer)."""
    key = (template, tuple(sorted(template_kwargs.items()))) if template_kwargs else template
    cache = getattr(tokenizer, "_ftwiz_turn_shapes", None)
    if cache is None:
        cache = tokenizer._ftwiz_turn_shapes = {}
    if key in cache:
        return cache[key]
    user = [{"role": "user", "content": PROBE_USER}]
    try:
        without = render(tokenizer, template, user, template_kwargs=template_kwargs)
        with_prompt = render(tokenizer, template, user, template_kwargs=template_kwargs, generation_prompt=True)
        prompt = with_prompt[len(without):] if with_prompt.startswith(without) else ""
    except TemplateRefused:
        prompt = ""
    end: str | None = None
    try:
        sentinel = SENTINELS[0]
        answered = render(tokenizer, template, [*user, {"role": "assistant", "content": sentinel}],
                          template_kwargs=template_kwargs)
        if answered.count(sentinel) == 1:
            end = answered[answered.index(sentinel) + 1:]
    except TemplateRefused:
        pass
    cache[key] = TurnShape(prompt, end, _token_cuts(tokenizer, end) if end else ())
    return cache[key]


def _token_cuts(tokenizer, text: str) -> tuple[int, ...]:
    """Where the tokens of ``text`` end (so a span never ends inside a token such as ``<|user|>``)."""
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return tuple(sorted({end for _start, end in encoded["offset_mapping"]}))
    except (NotImplementedError, ValueError, TypeError):  # a slow tokenizer: only the whole text is safe
        return (len(text),)


def _end_of_turn_length(full: str, at: int, shape: TurnShape, end_of_turn: str) -> int:
    """How much of the end-of-turn text follows the content at ``at``: all of it, or its longest prefix
    that ends at one of its token boundaries (Phi-3 closes a conversation with ``<|end|>\n<|endoftext|>``
    but an inner turn with ``<|end|>\n`` before ``<|user|>``)."""
    matched = _common_prefix(full[at:at + len(end_of_turn)], end_of_turn)
    if matched == len(end_of_turn) or end_of_turn is not shape.end_of_turn:
        return matched
    return max((cut for cut in shape.end_cuts if cut <= matched), default=0)


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (binary search on C-level slice comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, max(0, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _sentinel_for(message: dict[str, Any]) -> str:
    content = message.get("content")
    if not isinstance(content, str) or SENTINELS[0] not in content:
        return SENTINELS[0]
    return next(s for s in SENTINELS if s not in content)


def _with_sentinel(messages: list[dict[str, Any]], i: int, *, keep_calls: bool) -> list[dict[str, Any]]:
    message = messages[i]
    probe: dict[str, Any] = {"role": message["role"], "content": _sentinel_for(message)}
    if keep_calls and message.get("tool_calls"):
        probe["tool_calls"] = message["tool_calls"]
    return [*messages[:i], probe, *messages[i + 1:]]


def assistant_spans(tokenizer, template: str, messages: list[dict[str, Any]], full: str, turns: list[int], *,
                    tools: list[dict] | None = None,
                    template_kwargs: dict[str, Any] | None = None) -> list[tuple[int, int]]:
    """Character spans of ``full`` to learn, one per assistant turn index in ``turns`` (ascending).

    Each span starts where the template's generation prompt ends (text the template adds after it, such as
    Qwen3's ``<think>`` opening for a thinking answer, is learned: the model must produce it) and ends
    after the turn's end-of-turn text. Raises TemplateRefused when a turn cannot be located.
    """
    shape = turn_shape(tokenizer, template, template_kwargs)
    located: list[tuple[int, int]] = []  # (content start, content end) per turn
    cursor = 0
    for i in turns:
        other = None
        for keep_calls in (False, True):  # without tool calls first: then the calls fall inside the span
            try:
                other = render(tokenizer, template, _with_sentinel(messages, i, keep_calls=keep_calls), tools=tools,
                               template_kwargs=template_kwargs)
                break
            except TemplateRefused:
                continue
        if other is None:
            raise TemplateRefused("template_refused", f"assistant turn {i + 1} cannot be located in the rendered "
                                  "text: the chat template refuses it with other content")
        start = _common_prefix(full, other)
        if start < cursor:
            raise TemplateRefused("template_refused", f"assistant turn {i + 1} cannot be located in the rendered "
                                  "text: changing it changes an earlier part of the conversation")
        content_end = max(start, len(full) - _common_suffix(full, other, min(len(full), len(other)) - start))
        header = shape.generation_prompt
        at = full.rfind(header, cursor, start) if header else -1
        if at >= 0 and full[at + len(header):start].strip():
            start = at + len(header)  # text the template writes before the content is the model's to produce
        located.append((start, content_end))
        cursor = content_end
    end_of_turn = shape.end_of_turn
    if end_of_turn is None and turns and turns[-1] == len(messages) - 1:  # the probe was refused: the last turn's
        end_of_turn = full[located[-1][1]:]  # closing is the template's end-of-turn text
    spans = []
    for start, content_end in located:
        end = content_end
        if end_of_turn:
            end += _end_of_turn_length(full, content_end, shape, end_of_turn)
        spans.append((start, end))
    return spans
