"""The probe conversations and the character-for-character check of a TEMPLATE against the Jinja template.

Why: "renders exactly the same prompt" is only a claim until both sides are rendered on the same
conversations and compared; this module is that proof, shared by every way a TEMPLATE is found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ftwiz.core.chat_templates.render import Messages, TemplateRaised, render_chat
from ftwiz.core.deploy.gotemplate import GoTemplateError, ollama_values, render_go_template

# Contents without surrounding whitespace (see the templates module docstring), one with an inner newline.
_SYSTEM = "You answer briefly and kindly."
_TURNS = ("Hello! Who are you?", "I am a small assistant.", "What is 2 + 2?", "4.\nAnything else?",
          "Tell me a short joke.")


# An earlier answer with a reasoning block, as a thinking model writes it (and as training data holds it).
_THOUGHT, _ANSWER = "The user greets me; answer in one line.", "I am a small assistant."
THINK_ANSWER = f"<think>\n{_THOUGHT}\n</think>\n\n{_ANSWER}"


def probe_conversations() -> list[list[dict[str, str]]]:
    """1-, 2- and 3-turn conversations ending with a user message, each without and with a system prompt."""
    convs: list[list[dict[str, str]]] = []
    for turns in (1, 3, 5):
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": _TURNS[i]} for i in range(turns)]
        convs.append(msgs)
        convs.append([{"role": "system", "content": _SYSTEM}, *msgs])
    return convs


def thinking_probes() -> list[list[dict[str, str]]]:
    """2- and 3-turn conversations whose earlier answers carry a ``<think>`` block, with and without system."""
    convs: list[list[dict[str, str]]] = []
    for turns in (3, 5):
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": _TURNS[i]} for i in range(turns)]
        msgs[1] = {"role": "assistant", "content": THINK_ANSWER}
        convs.append(msgs)
        convs.append([{"role": "system", "content": _SYSTEM}, *msgs])
    return convs


def as_ollama_sees(messages: Messages, *, thinking_capable: bool) -> list[dict[str, str]]:
    """The messages as a client sends them back to Ollama.

    A model with Ollama's thinking capability has its reasoning split off by Ollama's thinking parser into
    the message's ``thinking`` field (whitespace around both parts trimmed), so the history a client
    sends back carries it there, not in ``content``; without the capability the text stays as generated.
    """
    out: list[dict[str, str]] = []
    for msg in messages:
        content = msg.get("content", "")
        if thinking_capable and msg.get("role") == "assistant" and "</think>" in content:
            thought, _, answer = content.partition("</think>")
            out.append({"role": "assistant", "content": answer.strip(),
                        "thinking": thought.split("<think>")[-1].strip()})
        else:
            out.append(dict(msg))
    return out


@dataclass(frozen=True)
class Renderer:
    """The Jinja side of the comparison: the model's template, how the runtime adds BOS, and the flags
    training rendered with (``enable_thinking``; ``now`` pins ``strftime_now``)."""

    chat_template: str
    bos_token: str | None = None
    eos_token: str | None = None
    runtime_adds_bos: bool = False
    enable_thinking: bool | None = None
    now: datetime | None = None

    def full(self, messages: Messages) -> str:
        """The whole prompt as training rendered it, BOS text included."""
        # unset BOS/EOS render as "" (a GGUF without them), as transformers renders a tokenizer without them
        return render_chat(self.chat_template, messages, add_generation_prompt=True, bos_token=self.bos_token or "",
                           eos_token=self.eos_token or "", enable_thinking=self.enable_thinking, now=self.now)

    def expected(self, messages: Messages) -> str:
        """What the model must see, as text, minus a leading BOS the runtime adds as a token itself."""
        text = self.full(messages)
        if self.runtime_adds_bos and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]
        return text


def ollama_prompt(template: str, messages: Messages, *, system: str | None = None, think: bool | None = None,
                  thinking_capable: bool | None = None) -> str:
    """What Ollama renders for these chat messages with this TEMPLATE (and Modelfile SYSTEM).

    ``thinking_capable`` defaults to what Ollama infers from the TEMPLATE (see :func:`thinking_capable`).
    """
    capable = is_thinking_capable(template) if thinking_capable is None else thinking_capable
    return render_go_template(template, ollama_values(messages, system=system, think=think,
                                                      thinking_capable=capable))


_THINKING_FIELD = re.compile(r"\{\{-?\s*\.Thinking\s*-?\}\}")


def is_thinking_capable(template: str) -> bool:
    """Whether Ollama gives a model with this TEMPLATE its thinking capability.

    Ollama (thinking/template.go ``InferTags``) looks for ``.Thinking`` printed inside ``range .Messages``
    with text on both sides (the opening and closing tags); the TEMPLATEs ftwiz writes print it only that
    way, so an action that prints ``.Thinking`` is the sign.
    """
    return bool(_THINKING_FIELD.search(template)) and "range" in template and ".Messages" in template


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


def compare(template: str, renderer: Renderer, conversations: Sequence[Messages], *,
            think: bool | None = None) -> list[Mismatch]:
    """Every conversation whose Ollama rendering differs from the Jinja rendering.

    ``think`` is the Ollama request's flag (None: not sent, Ollama's default for this TEMPLATE).
    """
    out: list[Mismatch] = []
    capable = is_thinking_capable(template)
    for msgs in conversations:
        expected = renderer.expected(msgs)
        try:
            got = ollama_prompt(template, as_ollama_sees(msgs, thinking_capable=capable), think=think,
                                thinking_capable=capable)
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
