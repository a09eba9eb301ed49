"""Render chat messages to the exact text a model was trained on, for HF tokenizers and GGUF files alike.

A run's template of record (the run card's ``chat_template``, what training rendered with) is the source
of truth; a GGUF evaluated on its own carries the template in its ``tokenizer.chat_template`` key. Both
are rendered by ``chat_templates.render_chat`` (transformers' own compiled Jinja), so every engine sees
the prompt text training saw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ftwiz.core.chat_templates import (
    TemplateRaised,
    render_chat,
    resolve_template,
    special_tokens_of,
    template_hash,
)
from ftwiz.core.chat_templates.system_fold import fold_system
from ftwiz.core.errors import FtwizError, Location


@dataclass(frozen=True)
class Renderer:
    """A chat template plus the special tokens it refers to, rendered by the one renderer training uses."""

    template: str
    bos_token: str | None = None
    eos_token: str | None = None
    tokenizer: Any = None  # when set, its special-token map is what the template reads (as in training)
    enable_thinking: bool | None = None  # the run's setting; None = the template's default

    @property
    def hash(self) -> str:
        return template_hash(self.template)

    def render(self, messages: list[dict[str, Any]], *, generation_prompt: bool,
               tools: list[dict[str, Any]] | None = None) -> str:
        """``messages`` (tool calls and tool results included) and the record's ``tools`` as training
        rendered them (``apply_chat_template(messages, tools=tools)``)."""
        tokens = special_tokens_of(self.tokenizer) if self.tokenizer is not None else None
        render = dict(special_tokens=tokens, bos_token=None if tokens else self.bos_token,
                      eos_token=None if tokens else self.eos_token, enable_thinking=self.enable_thinking, tools=tools)
        try:
            return render_chat(self.template, messages, add_generation_prompt=generation_prompt, **render)
        except TemplateRaised:  # no system role: the system text in front of the first user turn, as trained
            folded = fold_system(messages)
            if folded is None:
                raise
            return render_chat(self.template, folded, add_generation_prompt=generation_prompt, **render)


def renderer_for_tokenizer(tokenizer: Any, template_name: str | None = None, *, template: str | None = None,
                           enable_thinking: bool | None = None) -> Renderer:
    """The template training used: ``template`` (the run's template of record) when given, else the
    recipe's ``template:`` value resolved as training resolves it, else the tokenizer's own."""
    text = template or resolve_template(tokenizer, template_name, enable_thinking=enable_thinking).template
    return Renderer(template=text, bos_token=getattr(tokenizer, "bos_token", None),
                    eos_token=getattr(tokenizer, "eos_token", None), tokenizer=tokenizer,
                    enable_thinking=enable_thinking)


def served_through(renderer: Renderer | None, llm: Any) -> Renderer | None:
    """``renderer`` as a GGUF is prompted: its template is the training template after the documented
    leading space of a prepend_scheme=first tokenizer (core/export/space_prefix.py), so the GGUF's template
    is rendered instead and llama.cpp sees training's first token. Unchanged for any other GGUF."""
    from ftwiz.core.export.space_prefix import split_served

    template = (getattr(llm, "metadata", {}) or {}).get("tokenizer.chat_template")
    lead, training = split_served(template)
    if renderer is None or not lead or training != renderer.template:
        return renderer
    return replace(renderer, template=template)


def renderer_for_gguf(llm: Any, path: str) -> Renderer:
    """The template stored in a GGUF's metadata, with its BOS/EOS token texts."""
    metadata = getattr(llm, "metadata", {}) or {}
    template = metadata.get("tokenizer.chat_template")
    if not template:
        raise FtwizError("this GGUF has no chat template (tokenizer.chat_template)", where=Location(file=path),
                         fix="evaluate it through its run (`ftwiz eval RUN --gguf FILE`), or re-export it")

    def token_text(key: str) -> str | None:
        value = metadata.get(key)
        if value is None:
            return None
        return llm.detokenize([int(value)], special=True).decode("utf-8", errors="replace")

    return Renderer(template=template, bos_token=token_text("tokenizer.ggml.bos_token_id"),
                    eos_token=token_text("tokenizer.ggml.eos_token_id"))
