"""Chat templates and loss masks: render conversations and mark exactly the tokens to learn.

The mask is computed from character spans on the rendering of the whole conversation (the text the model
is trained on), not on renders of prefixes, so templates that rewrite earlier turns (Qwen3's ``<think>``
stripping, Mistral's system placement) are handled: see :mod:`ftwiz.core.data.render`. Tokens whose first
character falls inside a span are learned (see :func:`tokenize_with_labels` for the boundary rules); the
rest get label -100. :func:`verify_masks` checks a sample
of every dataset by decoding each learned run back (:mod:`ftwiz.core.data.mask_check`).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from ftwiz.core.chat_templates import NAMED_TEMPLATES as NAMED_TEMPLATES
from ftwiz.core.chat_templates import resolve_template
from ftwiz.core.chat_templates import template_hash as template_hash
from ftwiz.core.data.mask_check import verify_masks as verify_masks
from ftwiz.core.data.render import assistant_spans, render, render_conversation

ALPACA_TEMPLATE = NAMED_TEMPLATES["alpaca"]  # LLaMA-Factory's alpaca (kept importable under its old name)


def chat_template_of(tokenizer, name: str | None = None, *, enable_thinking: bool | None = None) -> str:
    """The template to render with: ``name`` (a named template, Jinja text or a .jinja path), else the
    tokenizer's own, with ``enable_thinking`` as its default; FtwizError naming the supported names when
    there is none. The run's template of record is resolved the same way (``chat_templates.record``)."""
    return resolve_template(tokenizer, name, enable_thinking=enable_thinking).template


def _render(tokenizer, template: str, messages: list[dict], *, generation_prompt: bool,
            tools: list[dict] | None = None, template_kwargs: dict[str, Any] | None = None) -> str:
    """The text ``apply_chat_template`` renders (see :func:`ftwiz.core.data.render.render`)."""
    return render(tokenizer, template, messages, tools=tools, template_kwargs=template_kwargs,
                  generation_prompt=generation_prompt)


def render_with_spans(tokenizer, template: str, messages: list[dict[str, Any]], *, train_on_prompt: bool = False,
                      mask_history: bool = False, tools: list[dict] | None = None,
                      template_kwargs: dict[str, Any] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text (exactly ``apply_chat_template(messages, tools=tools, **template_kwargs)``, with a
    system turn folded into the first user turn where the template refuses system roles) and the character
    spans to learn: each assistant turn's content (tool calls included) and its end-of-turn text, except
    turns with OpenAI's ``"weight": 0`` (context, not a target).

    Raises :class:`~ftwiz.core.data.render.TemplateRefused` when the template cannot render the record.
    """
    if messages and messages[0]["role"] == "text":  # continued pre-training: learn everything
        text = messages[0]["content"] + (tokenizer.eos_token or "")
        return text, [(0, len(text))]
    rendered, full = render_conversation(tokenizer, template, messages, tools=tools, template_kwargs=template_kwargs)
    if train_on_prompt:
        return full, [(0, len(full))]
    turns = [i for i, m in enumerate(rendered) if m["role"] == "assistant" and m.get("weight", 1) != 0]
    if mask_history:
        turns = turns[-1:]
    return full, assistant_spans(tokenizer, template, rendered, full, turns, tools=tools,
                                 template_kwargs=template_kwargs)


def tokenize_with_labels(tokenizer, texts: list[str], spans: list[list[tuple[int, int]]]) -> dict[str, list]:
    """Batch-tokenize rendered texts; label -100 everywhere outside the spans.

    A token is learned when its first character is inside a span, with two boundary rules: a token that
    starts with the whitespace just before a span and runs into it (SentencePiece's "▁Paris" after
    "[/INST] ") is learned, and a token that runs from inside a span past its end into the next turn
    (">" of an end-of-turn text merged with the next "<") is not.
    """
    if getattr(tokenizer, "is_fast", False):  # the Rust tokenizer directly: no per-encoding Python conversion
        encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
        encoded = {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings],
                   "attention_mask": [e.attention_mask for e in encodings]}
    else:
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    labels_batch = []
    for text, ids, offsets, text_spans in zip(texts, encoded["input_ids"], encoded["offset_mapping"], spans,
                                              strict=True):
        labels = [-100] * len(ids)
        starts = [start for start, _end in offsets]
        if starts == sorted(starts):  # the usual case: each span is one slice of tokens, found by bisection
            for s, e in text_spans:
                first, last = bisect_left(starts, s), bisect_left(starts, e)
                if first > 0 and offsets[first - 1][1] > s and not text[starts[first - 1]:s].strip():
                    first -= 1  # one token holds the space before the answer and its first word ("▁Paris")
                if last > first and offsets[last - 1][1] > e and text[e:offsets[last - 1][1]].strip():
                    last -= 1  # a token running past the end of the turn into the next one ("><"): not learned
                labels[first:last] = ids[first:last]
        else:
            for t, start in enumerate(starts):
                if any(s <= start < e for s, e in text_spans):
                    labels[t] = ids[t]
        labels_batch.append(labels)
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": labels_batch}


def trained_text(tokenizer, input_ids: list[int], labels: list[int]) -> str:
    return tokenizer.decode([t for t, lab in zip(input_ids, labels, strict=True) if lab != -100],
                            skip_special_tokens=False)
