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


def _vocab_gguf(model_dir: Path, out: Path, n_vocab: int) -> Path:
    """A GGUF with the exporter's tokenizer metadata (core/export/vocab.py) and no tensors."""
    import gguf
    from ftwiz.core.export.vocab import write_vocab

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    write_vocab(writer, model_dir, n_vocab)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


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
