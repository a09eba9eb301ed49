"""The one '▁' transformers puts at the very start of a text, carried into llama.cpp as a served space.

transformers 5 saves Llama-family SentencePiece tokenizers (TinyLlama, Llama 2, Mistral) as tokenizer.json
with a Metaspace pre-tokenizer ``prepend_scheme: "first"``: '▁' goes in front of the text only when it
opens with plain text at offset 0 (not after an added token such as ``</s>``, and not when the text
already opens with a space). llama.cpp's SentencePiece tokenizer cannot express that:
``add_space_prefix=true`` puts '▁' at the start AND after every special token, false puts none.

TinyLlama's zephyr template renders no BOS and opens with plain text, with ``</s>`` inside every turn:

    training (transformers)        '▁<' '|' 'user' ... 'Hi' '</s>' '<0x0A>' '<' '|' 'ass' ...
    add_space_prefix=true          '▁<' '|' 'user' ... 'Hi' '</s>' '▁' '<0x0A>' '<' ...   (a '▁' per turn)
    add_space_prefix=false         '<'  '|' 'user' ... 'Hi' '</s>' '<0x0A>' '<' '|' 'ass' ... (first differs)
    false, prompt ' ' + rendering  '▁<' '|' 'user' ... 'Hi' '</s>' '<0x0A>' '<' '|' 'ass' ... (identical)

So for ``prepend_scheme=first`` ftwiz writes ``add_space_prefix=false`` (core/export/vocab.py) and, when
the training template's renderings open with plain text, ships the GGUF's ``tokenizer.chat_template`` as
:data:`MARK` + the training template: every chat prompt llama.cpp, ``ftwiz chat``, the llama.cpp server and
the Modelfile's TEMPLATE (derived from the GGUF's template) build starts with one literal space, which
llama.cpp tokenizes as exactly the '▁' training had, for any number of turns. The run card, the adapter
and the merged model keep the training template unchanged; ``export --verify`` compares the GGUF's
template with it modulo exactly :data:`MARK` (:func:`split_served`).

The cost, chosen knowingly: a RAW completion prompt of plain text (no chat template) sent to llama.cpp
lacks the leading '▁' transformers gives it ('Hello' '▁world' instead of '▁Hello' '▁world') unless the
client sends a leading space itself. llama.cpp's own convert_hf_to_gguf.py writes no add_space_prefix for
such a folder (llama.cpp then defaults to true): raw text matches transformers there, but every chat turn
after ``</s>`` gets an extra '▁' the model never saw. ftwiz serves chat models, so chat prompts win.
Ollama's own Go SentencePiece tokenizer (model/sentencepiece.go) also puts no '▁' in front of a text, so
the served space is what gives that engine training's first token too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPACE = " "
# A Jinja comment naming the reason, then the literal space: an expression's output is never removed by a
# following tag's whitespace control ('{%-'), whatever the training template starts with.
MARK = ("{#- ftwiz: the leading space stands for the '\u2581' transformers puts at the start of a text "
        "(tokenizer.json prepend_scheme=first); see ftwiz/core/export/space_prefix.py #}{{ ' ' }}")
PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}],
]


def opens_with_plain_text(text: str, added_tokens: Iterable[str]) -> bool:
    """True when transformers' Metaspace ``first`` puts '▁' in front of ``text``: it opens with neither an
    added token (which splits the text, so its first plain part is not at offset 0) nor a space."""
    if not text or text[0] in (SPACE, "\u2581"):
        return False
    return not any(token and text.startswith(token) for token in added_tokens)


def split_served(template: str | None) -> tuple[str, str | None]:
    """(the served prefix, the training template) of a GGUF's ``tokenizer.chat_template``: (" ", template
    without :data:`MARK`) when ftwiz added the mark, else ("", template)."""
    if template and template.startswith(MARK):
        return SPACE, template[len(MARK):]
    return "", template


def _special_tokens(model_dir: Path) -> dict[str, str]:
    """bos/eos/unk/pad texts from tokenizer_config.json (strings or AddedToken dicts)."""
    path = model_dir / "tokenizer_config.json"
    cfg: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    out = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = cfg.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            out[key] = value
    return out


def served_chat_template(template: Any, tokenizer_json: dict[str, Any], model_dir: Path,
                         enable_thinking: bool | None = None) -> Any:
    """The chat template to write into a GGUF whose add_space_prefix is false for a ``prepend_scheme=first``
    tokenizer: :data:`MARK` + ``template`` when every probe conversation renders opening with plain text;
    ``template`` unchanged when none does (then neither side has a '▁' anywhere). A template whose
    renderings differ in that respect cannot be served faithfully by llama.cpp: it is kept, with a warning.
    Named template lists (gguf-py's multi-template form) are kept as they are."""
    from ftwiz.core.chat_templates.render import render_chat
    from ftwiz.core.errors import FtwizError

    if not isinstance(template, str) or not template or template.startswith(MARK):
        return template
    added = [t.get("content", "") for t in tokenizer_json.get("added_tokens") or []]
    special = _special_tokens(model_dir)
    opens = set()
    for messages in PROBES:
        try:
            text = render_chat(template, messages, add_generation_prompt=True, special_tokens=special,
                               enable_thinking=enable_thinking)
        except FtwizError:  # a template that refuses a probe (no system role): the others decide
            continue
        opens.add(opens_with_plain_text(text, added))
    if opens == {True}:
        return MARK + template
    if len(opens) > 1:
        log.warning("%s: the chat template opens some prompts with plain text and others with a special token; "
                    "llama.cpp cannot reproduce transformers' '\u2581' at the start of only the former "
                    "(prepend_scheme=first), so those prompts differ in their first token", model_dir)
    return template
