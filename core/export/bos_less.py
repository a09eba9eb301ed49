"""``bos_token`` in the chat template of a tokenizer that has no BOS token: served as nothing, as trained.

Qwen2/Qwen3 tokenizers have ``bos_token: null``, so transformers renders a template's ``{{ bos_token }}`` as
'' (LLaMA-Factory's ``llama2`` and ``mistral`` templates on a Qwen base write it in front of turns). A GGUF
always names a BOS id (llama.cpp falls back to id 11 for BPE without one): the config.json's
``bos_token_id`` (Qwen2: ``<|endoftext|>``) or, without that, the EOS (core/export/vocab.py). llama.cpp's
chat formatter (``ftwiz chat``, the llama.cpp server) passes that token's text as ``bos_token``, and the
Ollama TEMPLATE is derived from the GGUF's template, so every served prompt carried a token training
never had. So the GGUF's template opens with :data:`MARK`, which sets ``bos_token`` to '' for the whole
template; ``export --verify`` finds the training template after it (:func:`strip_mark`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# A Jinja comment naming the reason, the assignment, then an expression so that the template's own first
# character (a newline, a '{%-') is neither trimmed by trim_blocks nor joined to the set tag.
MARK = ("{#- ftwiz: this tokenizer has no BOS token, so transformers renders bos_token as ''; see "
        "ftwiz/core/export/bos_less.py #}{%- set bos_token = '' %}{{ '' }}")


def _bos_text(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("bos_token")
    except (ValueError, AttributeError):
        return None
    return value.get("content") if isinstance(value, dict) else value


def has_bos_token(model_dir: Path) -> bool:
    """Whether transformers gives the tokenizer in ``model_dir`` a ``bos_token`` (tokenizer_config.json,
    else special_tokens_map.json)."""
    return any(_bos_text(model_dir / name) for name in ("tokenizer_config.json", "special_tokens_map.json"))


def served_without_bos(template: Any, model_dir: Path) -> Any:
    """:data:`MARK` + ``template`` when the tokenizer has no BOS token and the template names ``bos_token``;
    anything else (no template, gguf-py's named-template lists, a tokenizer with a BOS) unchanged."""
    if not isinstance(template, str) or "bos_token" not in template or template.startswith(MARK):
        return template
    return template if has_bos_token(model_dir) else MARK + template


def strip_mark(template: str | None) -> str | None:
    """The training template inside a GGUF's template (:data:`MARK` removed when present)."""
    if template and template.startswith(MARK):
        return template[len(MARK):]
    return template
