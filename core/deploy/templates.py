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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from ftwiz.core.deploy.gotemplate import GoTemplateError, check_go_template, ollama_values, render_go_template
from ftwiz.core.errors import FtwizError

Messages = Sequence[Mapping[str, str]]

FAMILIES = ("chatml", "llama3", "mistral", "gemma", "phi3")


# ------------------------------------------------------------------------------------ Jinja, as HF renders


class _TemplateRaised(Exception):
    """The chat template called raise_exception (e.g. 'System role not supported')."""


def _raise(message: str) -> None:
    raise _TemplateRaised(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _generation_tags() -> Any:
    """``{% generation %}...{% endgeneration %}`` (HF's assistant-mask markers) render their body unchanged."""
    from jinja2.ext import Extension

    class GenerationTags(Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    return GenerationTags


@lru_cache(maxsize=32)
def _compile(chat_template: str) -> Any:
    """Compile like transformers does: sandboxed, trim_blocks + lstrip_blocks, loop controls, generation tags."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols, _generation_tags()])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(chat_template)
    except jinja2.TemplateError as exc:
        raise FtwizError(f"the model's chat template does not parse as Jinja: {exc}",
                         where="tokenizer.chat_template",
                         fix="fix chat_template in tokenizer_config.json and export again") from None


def render_jinja(chat_template: str, messages: Messages, *, bos_token: str | None = None,
                 eos_token: str | None = None, add_generation_prompt: bool = True) -> str:
    """The prompt text the model was trained on, rendered from its Jinja chat template."""
    return _compile(chat_template).render(
        messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
        bos_token=bos_token or "", eos_token=eos_token or "", tools=None, documents=None,
    )


def detect_family(chat_template: str) -> str | None:
    """The template family from its turn markers, or None when ftwiz does not know it."""
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    if "<start_of_turn>" in chat_template:
        return "gemma"
    if "<|user|>" in chat_template and "<|assistant|>" in chat_template:
        return "phi3"
    if "[INST]" in chat_template:
        return "mistral"
    return None


# ------------------------------------------------------------------------------------ turn layout


@dataclass(frozen=True)
class TurnParts:
    """The text around each message's content; enough to write a Go template for the chat.

    ``user_pre_after_system`` covers templates that fold the system prompt into the first user turn
    (Gemma, Mistral): the user prefix is then already written by the system block.
    """

    sys_pre: str
    sys_post: str
    user_pre: str
    user_post: str
    asst_pre: str
    asst_post: str
    gen: str
    user_pre_after_system: str | None = None
    head: str = ""                      # emitted once at the very start (BOS text when the runtime does not add it)
    default_system: str | None = None   # the system prompt the Jinja template inserts when none is given


_KNOWN: dict[str, TurnParts] = {
    "chatml": TurnParts(
        sys_pre="<|im_start|>system\n", sys_post="<|im_end|>\n",
        user_pre="<|im_start|>user\n", user_post="<|im_end|>\n",
        asst_pre="<|im_start|>assistant\n", asst_post="<|im_end|>\n", gen="<|im_start|>assistant\n"),
    "llama3": TurnParts(
        sys_pre="<|start_header_id|>system<|end_header_id|>\n\n", sys_post="<|eot_id|>",
        user_pre="<|start_header_id|>user<|end_header_id|>\n\n", user_post="<|eot_id|>",
        asst_pre="<|start_header_id|>assistant<|end_header_id|>\n\n", asst_post="<|eot_id|>",
        gen="<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "mistral": TurnParts(
        sys_pre="[INST] ", sys_post="\n\n", user_pre="[INST] ", user_post=" [/INST]",
        asst_pre="", asst_post="</s>", gen="", user_pre_after_system=""),
    "gemma": TurnParts(
        sys_pre="<start_of_turn>user\n", sys_post="\n\n",
        user_pre="<start_of_turn>user\n", user_post="<end_of_turn>\n",
        asst_pre="<start_of_turn>model\n", asst_post="<end_of_turn>\n", gen="<start_of_turn>model\n",
        user_pre_after_system=""),
    "phi3": TurnParts(
        sys_pre="<|system|>\n", sys_post="<|end|>\n", user_pre="<|user|>\n", user_post="<|end|>\n",
        asst_pre="<|assistant|>\n", asst_post="<|end|>\n", gen="<|assistant|>\n"),
}

# End-of-turn markers each family may emit; the Modelfile keeps those that are control tokens in the GGUF.
_STOPS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    "llama3": ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"),
    "mistral": ("</s>", "[INST]", "[/INST]"),
    "gemma": ("<end_of_turn>", "<start_of_turn>", "<eos>"),
    "phi3": ("<|end|>", "<|user|>", "<|assistant|>", "<|endoftext|>"),
}
_SPECIAL_LIKE = re.compile(r"<\|[^<>|\s]+\|>|<[a-z_/][a-z_]*>|\[/?[A-Z_]+\]")


def _lit(text: str) -> str:
    """Literal text for a Go template; quoted in an action when it would clash with the delimiters."""
    if "{{" in text or "}}" in text:
        return "{{ " + json.dumps(text, ensure_ascii=False) + " }}"
    return text


def go_template(parts: TurnParts, *, with_system: bool = True) -> str:
    """Assemble an Ollama TEMPLATE from a turn layout.

    Every line ends with an action and every line after the first starts with ``{{-``, so the only
    whitespace Go trims is the layout's own newlines, never the model's (``<|im_end|>\\n`` keeps its
    newline). The last assistant message is left open, as Ollama does, so a client can prefill it.
    """
    track_prev = parts.user_pre_after_system is not None and parts.user_pre_after_system != parts.user_pre
    lines: list[str] = []
    if with_system:
        block = _lit(parts.sys_pre) + "{{ .System }}" + _lit(parts.sys_post)
        line = "{{ if .System }}" + block
        if parts.default_system is not None:
            line += "{{ else }}" + _lit(parts.sys_pre + parts.default_system + parts.sys_post)
        lines.append(line + "{{ end }}")
    if track_prev:
        lines.append('{{ $prev := "" }}')
    lines.append("{{ range $i, $_ := .Messages }}")
    lines.append("{{ $last := eq (len (slice $.Messages $i)) 1 }}")
    if track_prev:
        user_pre = ('{{ if eq $prev "system" }}' + _lit(parts.user_pre_after_system or "") + "{{ else }}"
                    + _lit(parts.user_pre) + "{{ end }}")
    else:
        user_pre = _lit(parts.user_pre)
    lines.append('{{ if eq .Role "user" }}' + user_pre + "{{ .Content }}" + _lit(parts.user_post)
                 + "{{ if $last }}" + _lit(parts.gen) + "{{ end }}")
    lines.append('{{ else if eq .Role "assistant" }}' + _lit(parts.asst_pre) + "{{ .Content }}"
                 + "{{ if not $last }}" + _lit(parts.asst_post) + "{{ end }}")
    lines.append("{{ end }}")
    if track_prev:
        lines.append("{{ $prev = .Role }}")
    lines.append("{{ end }}")
    text = "\n".join(lines[:1] + ["{{-" + line[2:] for line in lines[1:]])
    if parts.head:
        return _lit(parts.head) + text
    return "{{-" + text[2:]


# ------------------------------------------------------------------------------------ probes and checks

# Contents without surrounding whitespace (see module docstring), one with an inner newline.
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


def _split_probes(renderer: Renderer) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]], bool]:
    """(plain probes, system probes, whether the Jinja template accepts a system message at all)."""
    plain = [c for c in probe_conversations() if c[0]["role"] != "system"]
    system = [c for c in probe_conversations() if c[0]["role"] == "system"]
    try:
        dropped = any(_SYSTEM not in renderer.expected(conv) for conv in system)
    except _TemplateRaised:
        return plain, [], False
    if dropped:  # the template silently ignores system messages (some Phi-3 revisions do)
        return plain, [], False
    return plain, system, True


# ------------------------------------------------------------------------------------ derivation


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    prefix = a[:n]
    # never end inside a special token such as "<|im_"
    if prefix.rfind("<") > prefix.rfind(">"):
        prefix = prefix[:prefix.rfind("<")]
    return prefix


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    suffix = a[len(a) - n:] if n else ""
    # never start inside a special token such as "|><|start_header_id|>"
    close, open_ = suffix.find(">"), suffix.find("<")
    if close != -1 and (open_ == -1 or close < open_):
        suffix = suffix[close + 1:]
    return suffix


_S, _U1, _A1, _U2 = "ftwizSYSTEMx", "ftwizUSER1x", "ftwizANSWER1x", "ftwizUSER2x"


def _cut(text: str, *marks: str) -> list[str] | None:
    """The pieces of ``text`` between the marks, in order, or None when a mark is missing."""
    pieces, pos = [], 0
    for mark in marks:
        found = text.find(mark, pos)
        if found == -1:
            return None
        pieces.append(text[pos:found])
        pos = found + len(mark)
    pieces.append(text[pos:])
    return pieces


def _head_and_default(renderer: Renderer, parts: TurnParts, system_ok: bool) -> TurnParts | None:
    """Fill in the BOS head and any built-in default system prompt by rendering the Jinja template."""
    one = _cut(renderer.expected([{"role": "user", "content": _U1}]), _U1)
    if one is None:
        return None
    before_user = one[0]
    head = ""
    if system_ok:
        with_sys = _cut(renderer.expected([{"role": "system", "content": _S}, {"role": "user", "content": _U1}]),
                        _S, _U1)
        if with_sys is None:
            return None
        if with_sys[0].endswith(parts.sys_pre):
            head = with_sys[0][:len(with_sys[0]) - len(parts.sys_pre)]
    elif before_user.endswith(parts.user_pre):
        head = before_user[:len(before_user) - len(parts.user_pre)]
    if not before_user.startswith(head) or not before_user.endswith(parts.user_pre):
        return None
    block = before_user[len(head):len(before_user) - len(parts.user_pre)]
    default = None
    if block:
        if not (system_ok and block.startswith(parts.sys_pre) and block.endswith(parts.sys_post)
                and len(block) >= len(parts.sys_pre) + len(parts.sys_post)):
            return None
        default = block[len(parts.sys_pre):len(block) - len(parts.sys_post)]
    return replace(parts, head=head, default_system=default)


def derive_parts(renderer: Renderer, system_ok: bool) -> TurnParts | None:
    """Cut the turn layout out of the Jinja template by rendering sentinel messages; None if it won't cut."""
    two = _cut(renderer.expected([{"role": "user", "content": _U1}, {"role": "assistant", "content": _A1},
                                  {"role": "user", "content": _U2}]), _U1, _A1, _U2)
    if two is None:
        return None
    x0, x1, x2, x3 = two
    user_post = _common_prefix(x1, x3)
    user_pre = _common_suffix(x0, x2)
    parts = TurnParts(sys_pre="", sys_post="", user_pre=user_pre, user_post=user_post,
                      asst_pre=x1[len(user_post):], asst_post=x2[:len(x2) - len(user_pre)],
                      gen=x3[len(user_post):])
    if system_ok:
        with_sys = _cut(renderer.expected([{"role": "system", "content": _S}, {"role": "user", "content": _U1}]),
                        _S, _U1)
        if with_sys is None:
            return None
        bos = renderer.bos_token or ""
        lead = with_sys[0]
        sys_pre = lead[len(bos):] if bos and lead.startswith(bos) else lead
        between = with_sys[1]
        if user_pre and between.endswith(user_pre):
            parts = replace(parts, sys_pre=sys_pre, sys_post=between[:len(between) - len(user_pre)])
        else:
            parts = replace(parts, sys_pre=sys_pre, sys_post=between, user_pre_after_system="")
    return _head_and_default(renderer, parts, system_ok)


# ------------------------------------------------------------------------------------ the public entry


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
    found: list[str] = list(_STOPS.get(family or "", ()))
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
        plain, system_probes, system_ok = _split_probes(renderer)
        for conv in plain:
            renderer.expected(conv)
    except _TemplateRaised as exc:
        raise FtwizError(f"the model's chat template refuses a plain user/assistant conversation: {exc}",
                         where="tokenizer.chat_template", fix="fix the chat template and export again") from None
    family = detect_family(chat_template)
    candidates: list[tuple[str, Callable[[], TurnParts | None]]] = []
    if family:
        known = _KNOWN[family]
        if family == "mistral" and eos_token:
            known = replace(known, asst_post=eos_token)
        candidates.append((family, lambda: _head_and_default(renderer, known, system_ok)))
    candidates.append(("derived", lambda: derive_parts(renderer, system_ok)))
    mismatches: list[Mismatch] = []
    plain_only: OllamaTemplate | None = None
    for name, make in candidates:
        try:
            parts = make()
        except _TemplateRaised:
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
