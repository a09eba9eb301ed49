"""The probe conversations and the character-for-character check of a TEMPLATE against the Jinja template.

Why: "renders exactly the same prompt" is only a claim until both sides are rendered on the same
conversations and compared; this module is that proof, shared by every way a TEMPLATE is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ftwiz.core.deploy.gotemplate import GoTemplateError, ollama_values, render_go_template
from ftwiz.core.deploy.jinja_render import Messages, TemplateRaised, render_jinja

# Contents without surrounding whitespace (see the templates module docstring), one with an inner newline.
_SYSTEM = "You answer briefly and kindly."
_TURNS = ("Hello! Who are you?", "I am a small assistant.", "What is 2 + 2?", "4.\nAnything else?",
          "Tell me a short joke.")


def probe_conversations() -> list[list[dict[str, str]]]:
    """1-, 2- and 3-turn conversations ending with a user message, each without and with a system prompt."""
    convs: list[list[dict[str, str]]] = []
    for turns in (1, 3, 5):
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": _TURNS[i]} for i in range(turns)]
        convs.append(msgs)
        convs.append([{"role": "system", "content": _SYSTEM}, *msgs])
    return convs


@dataclass(frozen=True)
class Renderer:
    """The Jinja side of the comparison: the model's template plus how the runtime adds BOS."""

    chat_template: str
    bos_token: str | None = None
    eos_token: str | None = None
    runtime_adds_bos: bool = False

    def expected(self, messages: Messages) -> str:
        """What the model must see, as text, minus a leading BOS the runtime adds as a token itself."""
        text = render_jinja(self.chat_template, messages, bos_token=self.bos_token, eos_token=self.eos_token)
        if self.runtime_adds_bos and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]
        return text


def ollama_prompt(template: str, messages: Messages, *, system: str | None = None) -> str:
    """What Ollama renders for these chat messages with this TEMPLATE (and Modelfile SYSTEM)."""
    return render_go_template(template, ollama_values(messages, system=system))


@dataclass(frozen=True)
class Mismatch:
    messages: list[dict[str, str]]
    expected: str
    got: str

    def describe(self) -> str:
        cut = next((i for i, (a, b) in enumerate(zip(self.expected, self.got, strict=False)) if a != b),
                   min(len(self.expected), len(self.got)))
        roles = "/".join(m["role"] for m in self.messages)
        return (f"for a {roles} conversation the model's template gives {self.expected[max(0, cut - 30):cut + 30]!r}"
                f" but the Ollama template gives {self.got[max(0, cut - 30):cut + 30]!r}")


def compare(template: str, renderer: Renderer, conversations: Sequence[Messages]) -> list[Mismatch]:
    """Every conversation whose Ollama rendering differs from the Jinja rendering."""
    out: list[Mismatch] = []
    for msgs in conversations:
        expected = renderer.expected(msgs)
        try:
            got = ollama_prompt(template, msgs)
        except GoTemplateError as exc:
            got = f"<template error: {exc}>"
        if got != expected:
            out.append(Mismatch([dict(m) for m in msgs], expected, got))
    return out


def split_probes(renderer: Renderer) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]], bool]:
    """(plain probes, system probes, whether the Jinja template accepts a system message at all)."""
    plain = [c for c in probe_conversations() if c[0]["role"] != "system"]
    system = [c for c in probe_conversations() if c[0]["role"] == "system"]
    try:
        dropped = any(_SYSTEM not in renderer.expected(conv) for conv in system)
    except TemplateRaised:
        return plain, [], False
    if dropped:  # the template silently ignores system messages (some Phi-3 revisions do)
        return plain, [], False
    return plain, system, True
