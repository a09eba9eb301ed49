"""Which tokens end an answer: the chat template's end-of-turn markers plus every declared end-of-sequence id.

Why one place: a model fine-tuned on ChatML from a base whose end token is ``<|endoftext|>`` ends its
answers with ``<|im_end|>``; every runtime (Ollama's ``PARAMETER stop``, llama.cpp's chat and server,
vLLM's ``generation_config.json``) must stop on that marker, or answers run on into a made-up next turn.
The marker is read off the template itself (the text it writes right after an assistant answer), not
guessed from the tokenizer's ``eos_token``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ftwiz.core.chat_templates.render import TemplateRaised
from ftwiz.core.deploy.chat_families import FAMILY_STOPS, detect_family
from ftwiz.core.deploy.probes import Renderer
from ftwiz.core.deploy.turn_layout import derive_parts
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.space_prefix import split_served

# Text shaped like a special token (<|im_end|>, </s>, <end_of_turn>, [/INST]).
SPECIAL_LIKE = re.compile(r"<\|[^<>|\s]+\|>|<[a-z_/][a-z_]*>|\[/?[A-Z_]+\]")


def template_end_strings(chat_template: str | None, *, bos_token: str | None = None,
                         eos_token: str | None = None, family_markers: bool = True) -> tuple[str, ...]:
    """End-of-turn strings of a chat template, most specific first: the special-looking text it writes
    right after an assistant answer, then (``family_markers``) its family's known turn markers such as
    ChatML's ``<|im_start|>`` (a model starting a new turn has ended its own), then ``eos_token``.

    Never raises for an exotic template: what cannot be cut out of it is simply not listed.
    """
    found: list[str] = []
    if chat_template:
        try:
            # the turn layout of the training template (without a served leading space, export/space_prefix)
            parts = derive_parts(Renderer(split_served(chat_template)[1] or "", bos_token, eos_token), False)
        except (TemplateRaised, FtwizError, TypeError, ValueError):
            parts = None
        if parts is not None:
            found += SPECIAL_LIKE.findall(parts.asst_post)
        if family_markers:
            found += FAMILY_STOPS.get(detect_family(chat_template) or "", ())
    if eos_token:
        found.append(eos_token)
    return tuple(dict.fromkeys(t for t in found if t))


def generation_config_eos(model_dir: Path) -> list[int]:
    """``eos_token_id`` of a model folder's generation_config.json (int or list), else config.json's; [] if none."""
    for name in ("generation_config.json", "config.json"):
        path = Path(model_dir) / name
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, json.JSONDecodeError):
            continue
        if value is not None:
            return [int(v) for v in (value if isinstance(value, list) else [value])]
    return []


def model_stop_ids(model_dir: Path, tokenizer) -> list[int]:
    """Every token id that must end generation for an HF model folder: generation_config.json's
    ``eos_token_id`` (all of them), the tokenizer's EOS, and the chat template's end-of-turn markers that are
    single special tokens of the tokenizer."""
    ids = generation_config_eos(model_dir)
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    special = set(tokenizer.all_special_tokens) | {
        tok.content for tok in getattr(tokenizer, "added_tokens_decoder", {}).values() if tok.special}
    vocab = tokenizer.get_vocab()
    for text in template_end_strings(template, bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token,
                                     family_markers=False):
        if text in special and text in vocab:
            ids.append(int(vocab[text]))
    return list(dict.fromkeys(ids))
