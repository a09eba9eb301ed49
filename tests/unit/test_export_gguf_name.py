"""A GGUF's general.name carries llama.cpp's Phi-3 whitespace rule exactly when the tokenizer asks for it.

Oracle: llama.cpp's tokenization of a served Phi-3 prompt equals transformers' (which honours the
``rstrip`` flags of tokenizer.json's added tokens); and the rule's trigger is the name alone in llama.cpp.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ftwiz.core.export.gguf_name import gguf_general_name


def _folder(tmp_path: Path, name: str, rstrip: bool) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    added = [{"id": 0, "content": "<unk>", "special": True, "rstrip": False, "lstrip": False},
             {"id": 1, "content": "<|user|>", "special": True, "rstrip": rstrip, "lstrip": False},
             {"id": 2, "content": "<|end|>", "special": True, "rstrip": rstrip, "lstrip": False}]
    (folder / "tokenizer.json").write_text(json.dumps({"added_tokens": added}), encoding="utf-8")
    return folder


def test_a_phi3_style_tokenizer_gets_the_name_llama_cpp_strips_whitespace_for(tmp_path: Path) -> None:
    assert gguf_general_name(_folder(tmp_path, "merged", rstrip=True)) == "merged-phi3"
    assert gguf_general_name(_folder(tmp_path, "Phi-3-mini", rstrip=True)) == "Phi-3-mini"


def test_a_tokenizer_without_rstrip_never_carries_the_phi3_mark(tmp_path: Path) -> None:
    assert gguf_general_name(_folder(tmp_path, "merged", rstrip=False)) == "merged"
    assert gguf_general_name(_folder(tmp_path, "Phi3-distilled-Phi-3", rstrip=False)) == "phi-distilled-phi"
    bare = tmp_path / "no-tokenizer-json"
    bare.mkdir()
    assert gguf_general_name(bare) == "no-tokenizer-json"


def test_served_phi3_prompt_tokenizes_like_training(shared_dir: Path, tmp_path: Path) -> None:
    """End to end on the real Phi-3 tokenizer: a vocab-only GGUF named as export names it is tokenized by
    llama.cpp exactly as transformers tokenizes the rendered prompt (``<|user|>\\n`` loses its newline)."""
    import gguf
    import llama_cpp
    import transformers
    from ftwiz.core.export.vocab import write_vocab
    from transformers import AutoTokenizer

    src = shared_dir / "tokenizers" / "Phi-3-mini-4k-instruct"
    model = tmp_path / "merged"
    shutil.copytree(src, model)
    # a model folder, as users fine-tune it: with config.json transformers reads tokenizer.json as it is
    transformers.Phi3Config(vocab_size=32064, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                            intermediate_size=8).save_pretrained(model)
    tok = AutoTokenizer.from_pretrained(model)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hello there"}], tokenize=False,
                                     add_generation_prompt=True)
    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(gguf_general_name(model))
    for key, value in (("block_count", 1), ("context_length", 64), ("embedding_length", 8),
                       ("feed_forward_length", 8), ("head_count", 1)):
        getattr(writer, f"add_{key}")(value)
    write_vocab(writer, model, len(tok))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    served = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    llm.close()
    assert served == tok(prompt, add_special_tokens=False)["input_ids"]
