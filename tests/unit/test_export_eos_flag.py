"""A tokenizer_config.json with ``add_eos_token: true`` that transformers does not act on (TinyLlama's
tokenizer.json post-processor adds only ``<s>``): the GGUF must not ask the runtime for an EOS after every
prompt. Oracle: the HF tokenizer's ids for a text, against llama.cpp's with the GGUF's special-token flags
(what Ollama and llama.cpp's server use), and the Ollama TEMPLATE's token check that ``ftwiz register`` runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from real_tokenizers import require_shared
from vocab_gguf import vocab_gguf


def _vocab_gguf(model_dir: Path, out: Path, n_vocab: int) -> Path:
    return vocab_gguf(model_dir, out, n_vocab, context_length=2048)


@pytest.fixture(scope="module")
def tinyllama_add_eos(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tinyllama-add-eos")
    for item in (require_shared() / "TinyLlama-1.1B-Chat-v1.0").iterdir():
        shutil.copy(item, folder / item.name)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "add_eos_token": True}), encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}), encoding="utf-8")
    return AutoTokenizer.from_pretrained(folder), _vocab_gguf(folder, folder / "vocab.gguf", 32000)


def test_no_eos_is_appended_to_prompts_when_transformers_appends_none(tinyllama_add_eos) -> None:
    import llama_cpp
    from ftwiz.core.deploy.modelfile import modelfile_spec

    tok, gguf_path = tinyllama_add_eos
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        for text in ("Hello world", "<|user|>\nHi</s>\n<|assistant|>\n"):
            expected = tok(text).input_ids
            assert expected[-1] != tok.eos_token_id
            assert llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)[-1] != tok.eos_token_id
    finally:
        llm.close()
    assert "</s>" in modelfile_spec(gguf_path).stops  # register's token check passes (it saw a trailing EOS)
