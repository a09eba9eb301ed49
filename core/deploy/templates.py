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

Beyond the turn layout: the BOS text is left out when the runtime adds BOS (the GGUF's
``add_bos_token``) and never invented; a system prompt the template writes into the *last* user turn
(Mistral v3) is placed there with ``$lastUser``; a hybrid-thinking template (Qwen3) follows the recipe's
``enable_thinking`` (on: a TEMPLATE with Ollama's thinking capability whose ``think: false`` renders the
thinking-off prompt; off: one that always renders it); a template that writes today's date is refused
(Ollama can only write YYYY-MM-DD). :mod:`~ftwiz.core.deploy.modelfile` then compares llama.cpp tokens.

Known limits, on purpose: whitespace trimming of message contents inside a Jinja template (Llama-3's
``| trim``) cannot be expressed in Ollama's template language, so probes use contents without
surrounding whitespace; tools and images are not covered (the TEMPLATE has no ``.Tools``, so Ollama
refuses tool requests for the model instead of formatting them wrongly); a system message in the middle
of a conversation is not probed; with thinking off, a client that sends earlier answers back with inline
``<think>`` blocks gets them rendered as sent (a Go template cannot cut text; the model, trained with
thinking off, does not write them).

Where the pieces live: :mod:`~ftwiz.core.chat_templates.render` (the Jinja side: transformers' own compiled
template, the one renderer training, eval and verify use too),
:mod:`~ftwiz.core.deploy.chat_families` (known families, :class:`TurnParts`, the Go TEMPLATE emitter),
:mod:`~ftwiz.core.deploy.probes` (probe conversations and the comparison) and
:mod:`~ftwiz.core.deploy.turn_layout` (the layout cut from sentinel renders). This module ties them
together and is where callers import from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from ftwiz.core.chat_templates.render import Messages, TemplateRaised, render_chat
from ftwiz.core.deploy.chat_families import (
    FAMILIES,
    FAMILY_STOPS,
    KNOWN_PARTS,
    TurnParts,
    detect_family,
    go_template,
)
from ftwiz.core.deploy.gotemplate import check_go_template
from ftwiz.core.deploy.probes import (
    Mismatch,
    Renderer,
    compare,
    ollama_prompt,
    probe_conversations,
    split_probes,
    thinking_probes,
)
from ftwiz.core.deploy.turn_layout import derive_parts, head_and_default, last_user_system
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.space_prefix import MARK, split_served

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
    "render_chat",
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


def _date_dependence(renderer: Renderer) -> str | None:
    """The reason a template cannot be written for Ollama when its output depends on today's date, else None.

    Ollama's templates only know ``currentDate`` (always YYYY-MM-DD, template/template.go), while a Jinja
    template formats ``strftime_now`` as it likes (Llama 3.2: "26 Jul 2024"); so ftwiz renders the probes
    on two different days and refuses when the text differs.
    """
    conv = probe_conversations()[1]
    days = (datetime(2024, 7, 26, 9, 30), datetime(2025, 1, 3, 17, 5))
    try:
        first, second = (replace(renderer, now=day).expected(conv) for day in days)
    except TemplateRaised:
        first, second = (replace(renderer, now=day).expected(conv[1:]) for day in days)
    if first == second:
        return None
    formats = sorted(set(re.findall(r"strftime_now\(\s*['\"]([^'\"]*)['\"]", renderer.chat_template)))
    return (f"the chat template writes today's date (strftime_now({', '.join(formats) or '...'})) into every "
            "prompt, and Ollama's templates can only write it as YYYY-MM-DD (currentDate), so the prompt would "
            "differ from what training rendered")


def _thinking_gen(renderer: Renderer) -> tuple[str, bool] | None:
    """For a hybrid-thinking template (Qwen3): what it adds to the generation prompt when thinking is off,
    and whether thinking is on when ``enable_thinking`` is not passed; None for other templates."""
    if "enable_thinking" not in renderer.chat_template:
        return None
    one = [{"role": "user", "content": "ftwizUSERx"}]
    on = replace(renderer, enable_thinking=True).expected(one)
    off = replace(renderer, enable_thinking=False).expected(one)
    if on == off or not off.startswith(on):
        return None
    return off[len(on):], replace(renderer, enable_thinking=None).expected(one) == on


def ollama_template(chat_template: str | None, *, bos_token: str | None = None, eos_token: str | None = None,
                    runtime_adds_bos: bool = False, enable_thinking: bool | None = None) -> OllamaTemplate:
    """The Ollama TEMPLATE for a model's Jinja chat template, proven equal on probe conversations.

    ``runtime_adds_bos`` is the GGUF's ``tokenizer.ggml.add_bos_token``: when llama.cpp adds BOS as a
    token, the TEMPLATE must not write it again as text. ``enable_thinking`` is the recipe's flag for
    hybrid-thinking templates (Qwen3), None meaning the template's own default: thinking on gives a
    TEMPLATE with Ollama's thinking capability (Ollama then defaults a request's ``think`` to true, and
    ``think: false`` renders exactly what ``enable_thinking=False`` renders); thinking off gives one that
    always renders the thinking-off prompt.
    """
    if not chat_template:
        raise FtwizError("the model has no chat template, so ftwiz cannot write a faithful Ollama TEMPLATE",
                         where="tokenizer.chat_template",
                         fix="add a chat_template to the tokenizer_config.json of the model you export "
                             "(the one it was fine-tuned with), then export again")
    # a GGUF exported for a prepend_scheme=first tokenizer opens its template with a documented literal space
    # (core/export/space_prefix.py): the turn layout is derived without it, the TEMPLATE writes it first
    lead, chat_template = split_served(chat_template)
    lead_go = '{{ " " }}' if lead else ""
    lead_template = MARK if lead else ""
    renderer = Renderer(chat_template, bos_token, eos_token, runtime_adds_bos, enable_thinking=enable_thinking)
    try:
        plain, system_probes, system_ok = split_probes(renderer)
        for conv in plain:
            renderer.expected(conv)
        no_think = _thinking_gen(renderer)
    except TemplateRaised as exc:
        raise FtwizError(f"the model's chat template refuses a plain user/assistant conversation: {exc}",
                         where="tokenizer.chat_template", fix="fix the chat template and export again") from None
    dated = _date_dependence(renderer)
    if dated:
        raise _unfaithful(dated)
    # thinking on (the recipe's flag or the template's default): Ollama's think flag picks the prompt
    toggle = ""
    if no_think is not None and (enable_thinking or (enable_thinking is None and no_think[1])):
        toggle = no_think[0]
    if toggle:
        renderer = replace(renderer, enable_thinking=True)
    family = detect_family(chat_template)
    candidates: list[tuple[str, Callable[[], TurnParts | None]]] = []
    if family in KNOWN_PARTS:  # zephyr has no fixed layout (it ends turns with the tokenizer's EOS): derived
        known = KNOWN_PARTS[family]
        if family == "mistral" and eos_token:
            known = replace(known, asst_post=eos_token)
        candidates.append((family, lambda: head_and_default(renderer, known, system_ok)))
    candidates.append(("derived", lambda: derive_parts(renderer, system_ok)))
    if system_ok:
        candidates.append(("derived", lambda: _last_user_layout(renderer)))
    empty_system = system_ok and _empty_system_differs(renderer)
    probes = plain + system_probes + (_empty_system_probes() if empty_system else [])
    if toggle:
        probes += [c for c in thinking_probes() if system_ok or c[0]["role"] != "system"]
    mismatches: list[Mismatch] = []
    plain_only: OllamaTemplate | None = None
    for name, make in candidates:
        try:
            parts = make()
        except TemplateRaised:
            parts = None
        if parts is None:
            continue
        parts = replace(parts, no_think_gen=toggle, system_if_present=empty_system)
        template = lead_go + go_template(parts, with_system=system_ok)
        check_go_template(template)
        found = OllamaTemplate(family=name if name != "derived" else (family or "derived"), template=template,
                               stop_candidates=_stops_for(family, parts, eos_token), parts=parts,
                               system_supported=system_ok, derived=name == "derived")
        served = replace(renderer, chat_template=lead_template + renderer.chat_template)  # what the GGUF says
        mismatches = compare(template, served, probes)
        if toggle and not mismatches:  # the same TEMPLATE with a request's think=false
            off = replace(served, enable_thinking=False)
            mismatches = compare(template, off, plain + system_probes, think=False)
        if not mismatches:
            return found
        if system_ok and plain_only is None and not compare(template, served, plain):
            plain_only = replace(found, system_supported=False)
    if plain_only is not None:
        # faithful without a system prompt only (no candidate placed it right): usable, but SYSTEM is refused
        return plain_only
    detail = mismatches[0].describe() if mismatches else "its turns could not be cut around sentinel messages"
    raise _unfaithful(detail)


def _empty_system_probes() -> list[list[dict[str, str]]]:
    """Conversations whose system message is empty, as chat UIs with an empty system field send them."""
    return [[{"role": "system", "content": ""}, *conv] for conv in probe_conversations() if conv[0]["role"] != "system"]


def _empty_system_differs(renderer: Renderer) -> bool:
    """Whether the template renders an empty system message differently from none (ChatML writes an empty
    system turn; Qwen2 writes its default prompt only without one). Ollama's ``.System`` is "" either way."""
    user = [{"role": "user", "content": "ftwizUSERx"}]
    try:
        return renderer.expected([{"role": "system", "content": ""}, *user]) != renderer.expected(user)
    except TemplateRaised:
        return False


def _last_user_layout(renderer: Renderer) -> TurnParts | None:
    plain = derive_parts(renderer, False)
    return last_user_system(renderer, plain) if plain is not None else None


def _unfaithful(reason: str) -> FtwizError:
    return FtwizError(
        f"ftwiz cannot write an Ollama TEMPLATE that renders exactly what this model's chat template renders"
        f" ({reason}); registering with a guessed template would give wrong or endless answers",
        where="tokenizer.chat_template",
        fix="use `ftwiz serve` or `ftwiz chat` with the GGUF (llama.cpp applies the GGUF's own Jinja template), "
            "or write a Modelfile TEMPLATE by hand and run `ollama create -f Modelfile`",
    )
