"""A SentencePiece-family folder holding both tokenizer.json and tokenizer.model is exported from
tokenizer.json, the file transformers tokenizes with (training's tokens), not from tokenizer.model.

The case: Mistral v0.3 loaded from its tokenizer.model and saved by transformers 5 (what ftwiz's merge
writes too: the adapter's tokenizer.json beside the base's tokenizer.model). transformers 5 re-derives the
merges with the runs of '▁' first, so "  x" after a newline or [INST] is '▁▁' 'x' in training, while
tokenizer.model's scores (-1e9 for '▁▁') give '▁' '▁x': every indented line of code was served as tokens the
model never saw, and ``export --verify`` failed its tokenization check. Oracle: the HF tokenizer;
llama.cpp (llama-cpp-python, ``vocab_only``) tokenizes with the exported GGUF.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from real_tokenizers import require_shared
from vocab_gguf import vocab_gguf

TEXTS = [
    "def f(x):\n  return x\n\n    pass",
    "[INST]  code:\n```\n  x = 1\n```[/INST]",
    "a  b   c    d",
    "  Indented line\nwith a newline",
]


def _vocab_gguf(model_dir: Path, out: Path, n_vocab: int) -> Path:
    return vocab_gguf(model_dir, out, n_vocab)


@pytest.fixture(scope="module")
def mistral_both(tmp_path_factory: pytest.TempPathFactory):
    """Mistral v0.3 as a user's folder holds it after transformers 5 loaded and saved it: both files."""
    from transformers import AutoTokenizer, LlamaTokenizer

    source = require_shared() / "Mistral-7B-Instruct-v0.3" / "tokenizer.model"
    folder = tmp_path_factory.mktemp("mistral-both")
    shutil.copy(source, folder / "tokenizer.model")
    LlamaTokenizer.from_pretrained(folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>").save_pretrained(folder)
    assert (folder / "tokenizer.json").is_file() and (folder / "tokenizer.model").is_file()
    (folder / "config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}), encoding="utf-8")
    return AutoTokenizer.from_pretrained(folder), _vocab_gguf(folder, folder / "vocab.gguf", 32768)


def test_text_after_a_special_token_tokenizes_as_in_training(mistral_both) -> None:
    import llama_cpp

    tok, gguf_path = mistral_both
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        for text in TEXTS:
            # a chat prompt's text always follows a special token ([INST], <s>): no start-of-text '▁' on
            # either side, so the texts are tokenized after </s> here
            expected = tok("</s>" + text, add_special_tokens=False).input_ids
            got = llm.tokenize(("</s>" + text).encode("utf-8"), add_bos=False, special=True)
            assert got == expected, (text, tok.convert_ids_to_tokens(expected)[:8])
    finally:
        llm.close()
