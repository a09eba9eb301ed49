"""Chat templates and loss masks: render conversations and mark exactly the tokens to learn.

The mask is computed from character spans, not token guessing: for each assistant turn we render the
conversation up to the turn with the generation prompt (where the answer starts) and up to the end of
the turn (where it ends, end-of-turn token included, so the model learns to stop). Tokens whose first
character falls inside a span are learned; the rest get label -100. This works with any template that
renders a conversation as a prefix of its continuation, and :func:`verify_masks` proves it per dataset
by decoding the learned tokens back and finding every assistant text in them.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.chat_templates import NAMED_TEMPLATES as NAMED_TEMPLATES
from ftwiz.core.chat_templates import resolve_template
from ftwiz.core.chat_templates import template_hash as template_hash
from ftwiz.core.errors import FtwizError

ALPACA_TEMPLATE = NAMED_TEMPLATES["alpaca"]  # LLaMA-Factory's alpaca (kept importable under its old name)


def chat_template_of(tokenizer, name: str | None = None, *, enable_thinking: bool | None = None) -> str:
    """The template to render with: ``name`` (a named template, Jinja text or a .jinja path), else the
    tokenizer's own, with ``enable_thinking`` as its default; FtwizError naming the supported names when
    there is none. The run's template of record is resolved the same way (``chat_templates.record``)."""
    return resolve_template(tokenizer, name, enable_thinking=enable_thinking).template


def _template_variables(tokenizer) -> dict:
    """The special tokens a chat template may read (bos_token, eos_token, ...), computed once per tokenizer."""
    variables = getattr(tokenizer, "_ftwiz_template_variables", None)
    if variables is None:
        variables = dict(tokenizer.special_tokens_map)
        tokenizer._ftwiz_template_variables = variables
    return variables


def _render(tokenizer, template: str, messages: list[dict], *, generation_prompt: bool) -> str:
    """Render with transformers' own compiled (sandboxed, cached) Jinja template.

    Calling the compiled template directly gives the same text as ``apply_chat_template`` for plain
    role/content messages, without its per-call normalisation, which costs more than the render itself
    when tens of thousands of records are rendered two or three times each.
    """
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:  # a transformers without the helper: the public API, slower
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                             add_generation_prompt=generation_prompt)
    return _compile_jinja_template(template).render(messages=messages, tools=None, documents=None,
                                                    add_generation_prompt=generation_prompt,
                                                    **_template_variables(tokenizer))


def render_with_spans(tokenizer, template: str, messages: list[dict[str, str]], *, train_on_prompt: bool = False,
                      mask_history: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans to learn."""
    if messages and messages[0]["role"] == "text":  # continued pre-training: learn everything
        text = messages[0]["content"] + (tokenizer.eos_token or "")
        return text, [(0, len(text))]
    full = _render(tokenizer, template, messages, generation_prompt=False)
    if train_on_prompt:
        return full, [(0, len(full))]
    assistant_turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if mask_history:
        assistant_turns = assistant_turns[-1:]
    spans = []
    for i in assistant_turns:
        start = len(_render(tokenizer, template, messages[:i], generation_prompt=True))
        end_text = full if i == len(messages) - 1 else _render(tokenizer, template, messages[: i + 1],
                                                               generation_prompt=False)
        if not full.startswith(end_text[:start]):
            raise FtwizError(
                "the chat template does not render a conversation as a prefix of its continuation, so "
                "assistant turns cannot be located safely",
                fix="use `mask_history: true` (learn the last turn only) or a named template (chatml, llama3)")
        spans.append((start, len(end_text)))
    return full, spans


def tokenize_with_labels(tokenizer, texts: list[str], spans: list[list[tuple[int, int]]]) -> dict[str, list]:
    """Batch-tokenize rendered texts; label -100 everywhere outside the spans."""
    if getattr(tokenizer, "is_fast", False):  # the Rust tokenizer directly: no per-encoding Python conversion
        encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
        encoded = {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings],
                   "attention_mask": [e.attention_mask for e in encodings]}
    else:
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    labels_batch = []
    for ids, offsets, text_spans in zip(encoded["input_ids"], encoded["offset_mapping"], spans, strict=True):
        labels = [-100] * len(ids)
        for t, (start, _end) in enumerate(offsets):
            for s, e in text_spans:
                if s <= start < e:
                    labels[t] = ids[t]
                    break
        labels_batch.append(labels)
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": labels_batch}


def trained_text(tokenizer, input_ids: list[int], labels: list[int]) -> str:
    return tokenizer.decode([t for t, lab in zip(input_ids, labels, strict=True) if lab != -100],
                            skip_special_tokens=False)


def verify_masks(tokenizer, rows: list[dict[str, Any]], conversations: list[list[dict]], *,
                 mask_history: bool, train_on_prompt: bool) -> None:
    """Decode the learned tokens of each row and require every learned assistant text to be inside."""
    for row, messages in zip(rows, conversations, strict=True):
        learned = trained_text(tokenizer, row["input_ids"], row["labels"])
        if messages and messages[0]["role"] == "text":
            continue
        answers = [m["content"].strip() for m in messages if m["role"] == "assistant"]
        if mask_history:
            answers = answers[-1:]
        for answer in answers:
            if answer and answer not in learned:
                raise FtwizError(
                    "loss-mask check failed: an assistant answer is not among the learned tokens "
                    f"(answer starts {answer[:40]!r})",
                    fix="report this with your tokenizer; meanwhile set `template:` to a named template")
        if not train_on_prompt:
            prompts = [m["content"].strip() for m in messages if m["role"] == "user" and len(m["content"]) > 12]
            for prompt in prompts:
                if prompt in learned and not any(prompt in a for a in answers):
                    raise FtwizError("loss-mask check failed: a user prompt is among the learned tokens",
                                     fix="report this with your tokenizer; meanwhile set a named `template:`")
