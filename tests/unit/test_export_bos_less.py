"""A tokenizer without a BOS token (Qwen2) and a chat template that writes ``bos_token`` (LLaMA-Factory's
``llama2``/``mistral`` templates on a Qwen base): transformers renders ``bos_token`` as nothing, so the
served prompts must carry nothing there either.

A GGUF always names a BOS id (llama.cpp's default is 11 for BPE), here Qwen2's config.json one,
``<|endoftext|>``; llama.cpp's chat formatter and Ollama's TEMPLATE (derived from the GGUF's template) used to
render that token's text wherever the template says ``bos_token``. Oracle: ``apply_chat_template`` with the
real Qwen2 tokenizer; llama-cpp-python (``vocab_only``) tokenizes the served prompts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from real_tokenizers import SHARED_TOKENIZERS, real_tokenizer
from vocab_gguf import vocab_gguf

CHATS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a fruit."}],
]


def _vocab_gguf(model_dir: Path, out: Path, n_vocab: int) -> Path:
    return vocab_gguf(model_dir, out, n_vocab, arch='qwen2', rms_eps=1e-06)


@pytest.fixture(scope="module")
def qwen_mistral(tmp_path_factory: pytest.TempPathFactory):
    """Qwen2's real tokenizer (no BOS) carrying the named ``mistral`` template, its folder and vocab GGUF."""
    from ftwiz.core.chat_templates import NAMED_TEMPLATES

    tok = real_tokenizer("Qwen2-1.5B-Instruct-Boundless")
    assert tok.bos_token is None
    tok.chat_template = NAMED_TEMPLATES["mistral"]
    folder = tmp_path_factory.mktemp("qwen2-mistral")
    tok.save_pretrained(folder)
    config = json.loads((SHARED_TOKENIZERS / "Qwen2-1.5B-Instruct-Boundless" / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return tok, folder, _vocab_gguf(folder, folder / "vocab.gguf", len(tok))


def test_template_bos_token_renders_nothing_when_served_as_in_training(qwen_mistral) -> None:
    import llama_cpp
    from ftwiz.core.deploy.chat import chat_formatter
    from ftwiz.core.deploy.modelfile import modelfile_spec
    from ftwiz.core.deploy.templates import ollama_prompt
    from ftwiz.core.gguf_info import read_gguf_info

    tok, _, gguf_path = qwen_mistral
    info = read_gguf_info(gguf_path)
    assert not info.add_bos
    formatter, _ = chat_formatter(info)  # what `ftwiz chat` and the llama.cpp server render
    spec = modelfile_spec(gguf_path)
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        for chat in CHATS:
            trained = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            assert "<|endoftext|>" not in trained
            assert formatter(messages=chat).prompt == trained, "llama.cpp's chat prompt differs from training's"
            served = ollama_prompt(spec.template.template, chat, system=spec.system)
            assert served == trained, "Ollama's prompt differs from training's"
            ids = llm.tokenize(served.encode("utf-8"), add_bos=info.add_bos, special=True)
            assert ids == tok(trained, add_special_tokens=False).input_ids
    finally:
        llm.close()


def test_export_verify_accepts_the_served_template(qwen_mistral) -> None:
    """``export --verify`` still finds the training template in the GGUF (and it renders alike)."""
    import llama_cpp
    from ftwiz.core.chat_templates import NAMED_TEMPLATES, TemplateOfRecord
    from ftwiz.core.export.verify import _chat_check

    tok, _, gguf_path = qwen_mistral
    record = TemplateOfRecord(template=NAMED_TEMPLATES["mistral"], source="named", name="mistral")
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        check, _ = _chat_check(llm, tok, record)
    finally:
        llm.close()
    assert check.passed, check.detail
