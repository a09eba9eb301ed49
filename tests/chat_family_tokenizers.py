"""Chat tokenizers of seven template families for the data-conformance tests, loaded once per process.

Five are the real ones in ../shared/tokenizers (Qwen2 ChatML, Qwen3 with thinking and tools, Phi-3, Mistral
v0.3, TinyLlama); Llama-3- and Gemma-style ones are ftwiz's tiny byte-level BPE tokenizers with those
families' special tokens, Gemma's carrying Gemma's published template (no system role, strict
alternation). Qwen3 is loaded with its own tokenizer_config.json (its ``<think>`` and tool tokens are added
tokens), Mistral converted from its tokenizer.model (tens of seconds, once). Callers skip without ../shared.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

TOKENIZERS = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers"

# Gemma's published template (gemma-2-*-it, tokenizer_config.json): no system role, strict alternation.
GEMMA_PUBLISHED_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

FAMILIES = ("qwen2", "qwen3", "phi3", "mistral", "tinyllama", "llama3", "gemma")


def _work(name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ftwiz-chat-tok-")) / name
    folder.mkdir()
    return folder


@cache
def load(family: str):
    """The tokenizer of ``family`` (one of :data:`FAMILIES`) with its chat template."""
    from transformers import AutoTokenizer, LlamaTokenizer

    if family == "qwen2":
        return AutoTokenizer.from_pretrained(TOKENIZERS / "Qwen2-1.5B-Instruct-Boundless")
    if family == "qwen3":
        folder = _work("qwen3")
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(TOKENIZERS / "Qwen2-1.5B-Instruct-Boundless" / name, folder / name)
        shutil.copy(TOKENIZERS / "Qwen3-0.6B" / "tokenizer_config.json", folder / "tokenizer_config.json")
        return AutoTokenizer.from_pretrained(folder)
    if family == "phi3":
        return AutoTokenizer.from_pretrained(TOKENIZERS / "Phi-3-mini-4k-instruct")
    if family == "tinyllama":
        return AutoTokenizer.from_pretrained(TOKENIZERS / "TinyLlama-1.1B-Chat-v1.0")
    if family == "mistral":
        folder = _work("mistral")
        source = TOKENIZERS / "Mistral-7B-Instruct-v0.3"
        shutil.copy(source / "tokenizer.model", folder / "tokenizer.model")
        tok = LlamaTokenizer.from_pretrained(folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                             add_bos_token=True)
        tok.chat_template = (source / "chat_template.jinja").read_text(encoding="utf-8")
        return tok
    if family in ("llama3", "gemma"):
        from ftwiz.core.tiny.tokenizer import build_tokenizer

        tok = build_tokenizer(family, vocab_size=2048)
        if family == "gemma":
            tok.chat_template = GEMMA_PUBLISHED_TEMPLATE
        return tok
    raise ValueError(f"unknown family {family}")
