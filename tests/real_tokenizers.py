"""The real tokenizers in ../shared/tokenizers, loaded once per test session (the Qwen2 vocabulary alone takes
~13 s to load on a small machine). Importable because tests/ is on sys.path (tests/conftest.py lives there).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

import pytest

SHARED_TOKENIZERS = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers"


def require_shared() -> Path:
    """The folder, or a skip with the reason (a plain clone has no ../shared)."""
    if not (SHARED_TOKENIZERS / "Qwen2-1.5B-Instruct-Boundless").is_dir():
        pytest.skip(f"the real tokenizers are not in {SHARED_TOKENIZERS} (a plain clone has no ../shared)")
    return SHARED_TOKENIZERS


@lru_cache(maxsize=8)
def _load(name: str):
    from transformers import AutoTokenizer

    folder = SHARED_TOKENIZERS / name
    if name == "Mistral-7B-Instruct-v0.3":  # no tokenizer_config.json there: bos/eos as Mistral ships them
        # transformers 5 builds LlamaTokenizerFast(vocab_file=...) with a 3-piece vocabulary (every text -> <unk>
        # dropped); from_pretrained on a folder holding tokenizer.model converts the real 32,768 pieces
        from chat_family_tokenizers import load

        tok = load("mistral")
        assert len(tok) == 32768, f"Mistral v0.3 loaded with {len(tok)} pieces"
        return tok
    if name == "Qwen3-0.6B":  # Qwen3 shares Qwen2's vocabulary files; its own template
        tok = copy.copy(_load("Qwen2-1.5B-Instruct-Boundless"))
        tok.chat_template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]
        return tok
    return AutoTokenizer.from_pretrained(folder)


def real_tokenizer(name: str):
    """A copy of the named tokenizer (callers may change it), its chat template set."""
    require_shared()
    return copy.copy(_load(name))
