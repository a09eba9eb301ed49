"""From a model's Jinja chat template to an Ollama Go TEMPLATE that renders exactly the same prompt.

Why: after export, a wrong TEMPLATE or a missing stop token is what turns a good fine-tune into
gibberish or endless answers. So ftwiz never writes a TEMPLATE it has not checked: every candidate is
rendered with Ollama's values (see :mod:`ftwiz.core.deploy.gotemplate`) for 1-, 2- and 3-turn
conversations with and without a system prompt, and compared character for character with what the
model's own Jinja template renders (the way ``transformers`` renders it). A mismatch raises
:class:`FtwizError` instead of shipping a guess.

How a template is found:

1. the family is recognised from the markers in the Jinja template (ChatML, Llama-3, Mistral, Gemma,
   Phi-3) and its well-known turn layout is tried, with the BOS text and any built-in default system
   prompt probed from the Jinja template itself;
2. if that does not reproduce the Jinja output (a variant), or the family is unknown, the turn layout is
   *derived* by rendering the Jinja template with sentinel messages and cutting the text around them;
3. if neither reproduces the Jinja output, registration stops with an error that says why.

Known limits, on purpose: whitespace trimming of message contents inside a Jinja template (Llama-3's
``| trim``) cannot be expressed in Ollama's template language, so probes use contents without
surrounding whitespace; tools and images are not covered.

Where the pieces live: :mod:`~ftwiz.core.deploy.jinja_render` (the Jinja side, as transformers renders it),
:mod:`~ftwiz.core.deploy.chat_families` (known families, :class:`TurnParts`, the Go TEMPLATE emitter),
:mod:`~ftwiz.core.deploy.probes` (probe conversations and the comparison) and
:mod:`~ftwiz.core.deploy.turn_layout` (the layout cut from sentinel renders). This module ties them
together and is where callers import from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from ftwiz.core.deploy.chat_families import (
    FAMILIES,
    FAMILY_STOPS,
    KNOWN_PARTS,
    TurnParts,
    detect_family,
    go_template,
)
from ftwiz.core.deploy.gotemplate import check_go_template
from ftwiz.core.deploy.jinja_render import Messages, TemplateRaised, render_jinja
from ftwiz.core.deploy.probes import (
    Mismatch,
    Renderer,
    compare,
    ollama_prompt,
    probe_conversations,
    split_probes,
)
from ftwiz.core.deploy.turn_layout import derive_parts, head_and_default
from ftwiz.core.errors import FtwizError

# What callers import from here; the pieces live in the modules above.
__all__ = [
    "FAMILIES",
    "Messages",
    "Mismatch",
    "OllamaTemplate",
    "Renderer",
    "TurnParts",
    "compare",
    "derive_parts",
    "detect_family",
    "go_template",
    "ollama_prompt",
    "ollama_template",
    "probe_conversations",
    "render_jinja",
]

# Text shaped like a special token; the layout's markers of that shape become stop candidates too.
_SPECIAL_LIKE = re.compile(r"<\|[^<>|\s]+\|>|<[a-z_/][a-z_]*>|\[/?[A-Z_]+\]")


@dataclass(frozen=True)
class OllamaTemplate:
    """A checked Ollama TEMPLATE and what goes with it in a Modelfile."""

    family: str                    # chatml | llama3 | mistral | gemma | phi3 | derived
    template: str                  # the Go template; renders exactly what the Jinja template renders
    stop_candidates: tuple[str, ...]  # end-of-turn strings; the Modelfile keeps the GGUF's control tokens
    parts: TurnParts
    system_supported: bool         # False when the Jinja template refuses system messages
    derived: bool                  # True when the layout was cut from the Jinja template, not a known family

    @property
    def default_system(self) -> str | None:
        return self.parts.default_system


def _stops_for(family: str | None, parts: TurnParts, eos_token: str | None) -> tuple[str, ...]:
    found: list[str] = list(FAMILY_STOPS.get(family or "", ()))
    if eos_token:
        found.append(eos_token)
    for text in (parts.asst_post, parts.user_pre, parts.gen, parts.asst_pre):
        found.extend(_SPECIAL_LIKE.findall(text))
    return tuple(dict.fromkeys(t for t in found if t))


def ollama_template(chat_template: str | None, *, bos_token: str | None = None, eos_token: str | None = None,
                    runtime_adds_bos: bool = False) -> OllamaTemplate:
    """The Ollama TEMPLATE for a model's Jinja chat template, proven equal on probe conversations.

    ``runtime_adds_bos`` is the GGUF's ``tokenizer.ggml.add_bos_token``: when llama.cpp adds BOS as a
    token, the TEMPLATE must not write it again as text.
    """
    if not chat_template:
        raise FtwizError("the model has no chat template, so ftwiz cannot write a faithful Ollama TEMPLATE",
                         where="tokenizer.chat_template",
                         fix="add a chat_template to the tokenizer_config.json of the model you export "
                             "(the one it was fine-tuned with), then export again")
    renderer = Renderer(chat_template, bos_token, eos_token, runtime_adds_bos)
    try:
        plain, system_probes, system_ok = split_probes(renderer)
        for conv in plain:
            renderer.expected(conv)
    except TemplateRaised as exc:
        raise FtwizError(f"the model's chat template refuses a plain user/assistant conversation: {exc}",
                         where="tokenizer.chat_template", fix="fix the chat template and export again") from None
    family = detect_family(chat_template)
    candidates: list[tuple[str, Callable[[], TurnParts | None]]] = []
    if family:
        known = KNOWN_PARTS[family]
        if family == "mistral" and eos_token:
            known = replace(known, asst_post=eos_token)
        candidates.append((family, lambda: head_and_default(renderer, known, system_ok)))
    candidates.append(("derived", lambda: derive_parts(renderer, system_ok)))
    mismatches: list[Mismatch] = []
    plain_only: OllamaTemplate | None = None
    for name, make in candidates:
        try:
            parts = make()
        except TemplateRaised:
            parts = None
        if parts is None:
            continue
        template = go_template(parts, with_system=system_ok)
        check_go_template(template)
        found = OllamaTemplate(family=name if name != "derived" else (family or "derived"), template=template,
                               stop_candidates=_stops_for(family, parts, eos_token), parts=parts,
                               system_supported=system_ok, derived=name == "derived")
        mismatches = compare(template, renderer, plain + system_probes)
        if not mismatches:
            return found
        if system_ok and plain_only is None and not compare(template, renderer, plain):
            plain_only = replace(found, system_supported=False)
    if plain_only is not None:
        # faithful without a system prompt only (no candidate placed it right): usable, but SYSTEM is refused
        return plain_only
    detail = mismatches[0].describe() if mismatches else "its turns could not be cut around sentinel messages"
    raise FtwizError(
        f"ftwiz cannot write an Ollama TEMPLATE that renders exactly what this model's chat template renders"
        f" ({detail}); registering with a guessed template would give wrong or endless answers",
        where="tokenizer.chat_template",
        fix="use `ftwiz serve` or `ftwiz chat` with the GGUF (they use the embedded template), or write a "
            "Modelfile TEMPLATE by hand and run `ollama create -f Modelfile`",
    )
