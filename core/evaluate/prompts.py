"""Render chat messages to the exact text a model was trained on, for HF tokenizers and GGUF files alike.

A run's own tokenizer (and the recipe's ``template:``) is the source of truth; a GGUF evaluated on its
own carries the template in its ``tokenizer.chat_template`` key and is rendered with Jinja the way
transformers renders it (sandboxed, ``trim_blocks``/``lstrip_blocks``), so both engines see one prompt text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftwiz.core.data.template import chat_template_of, template_hash
from ftwiz.core.errors import FtwizError, Location


@dataclass(frozen=True)
class Renderer:
    """A chat template plus the special tokens it refers to."""

    template: str
    bos_token: str | None = None
    eos_token: str | None = None
    tokenizer: Any = None  # when set, transformers renders (exactly what training did)

    @property
    def hash(self) -> str:
        return template_hash(self.template)

    def render(self, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
        if self.tokenizer is not None:
            return self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                                      add_generation_prompt=generation_prompt)
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])

        def raise_exception(message: str) -> None:
            raise FtwizError(f"the chat template refused the messages: {message}",
                             fix="check the roles in the data (system/user/assistant, alternating)")

        env.globals["raise_exception"] = raise_exception
        return env.from_string(self.template).render(
            messages=messages, add_generation_prompt=generation_prompt,
            bos_token=self.bos_token or "", eos_token=self.eos_token or "",
        )


def renderer_for_tokenizer(tokenizer: Any, template_name: str | None = None) -> Renderer:
    """The template training used: the recipe's named template, else the tokenizer's own."""
    return Renderer(template=chat_template_of(tokenizer, template_name),
                    bos_token=getattr(tokenizer, "bos_token", None), eos_token=getattr(tokenizer, "eos_token", None),
                    tokenizer=tokenizer)


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
