"""Serving adds BOS exactly when training's sequences started with one.

Oracle: training's tokens are what ftwiz's data path makes of a conversation (the template rendered as
``apply_chat_template`` does, tokenized without added special tokens); serving's are llama.cpp's
tokenization of the prompt its chat formatter renders from the GGUF, with the BOS the GGUF asks for.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.export.train_bos import runtime_adds_bos, template_writes_bos

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a fruit."}]


def test_only_templates_that_write_bos_keep_the_runtime_bos() -> None:
    tokens = {"bos_token": "<s>", "eos_token": "</s>"}
    assert template_writes_bos("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}", tokens)
    assert not template_writes_bos("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}", tokens)


def _run_with_merged(tmp_path: Path, tokenizer_dir: Path, template: str) -> Path:
    """An ftwiz run folder (recipe + run card naming the training template) with a merged/ model folder
    whose tokenizer files are what training saved (transformers 5: tokenizer.json with prepend_scheme=first)
    beside the base's tokenizer.model, as core/export/merge.py assembles them."""
    import transformers

    run = tmp_path / "runs" / "zephyr"
    merged = run / "merged"
    shutil.copytree(tokenizer_dir, merged)
    transformers.AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(merged)
    transformers.LlamaConfig(vocab_size=32000, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                             num_attention_heads=1).save_pretrained(merged)
    (run / "recipe.yaml").write_text("model_name_or_path: base\n", encoding="utf-8")
    (run / "run_card.json").write_text(json.dumps({"chat_template": template, "template_source": "model"}),
                                       encoding="utf-8")
    return merged


def _vocab_gguf(model_dir: Path, out: Path) -> Path:
    import gguf
    from ftwiz.core.export.vocab import write_vocab

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(model_dir.name)
    for key, value in (("block_count", 1), ("context_length", 64), ("embedding_length", 8),
                       ("feed_forward_length", 8), ("head_count", 1)):
        getattr(writer, f"add_{key}")(value)
    write_vocab(writer, model_dir, 32000, add_bos=runtime_adds_bos(model_dir))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _served_and_trained(shared_dir: Path, tmp_path: Path) -> tuple[list[int], list[int]]:
    """TinyLlama's zephyr template writes no BOS and training adds none: the GGUF of the run says
    add_bos_token=false, and llama.cpp's tokens of the served prompt start as the training tokens do."""
    import llama_cpp
    from ftwiz.core.data.template import render_with_spans, tokenize_with_labels
    from ftwiz.core.deploy.chat import chat_formatter
    from ftwiz.core.gguf_info import read_gguf_info
    from transformers import AutoTokenizer

    src = shared_dir / "tokenizers" / "TinyLlama-1.1B-Chat-v1.0"
    template = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]
    merged = _run_with_merged(tmp_path, src, template)
    tok = AutoTokenizer.from_pretrained(merged)
    assert tok.bos_token == "<s>" and tok("x")["input_ids"][0] == tok.bos_token_id  # the tokenizer itself adds BOS

    info = read_gguf_info(_vocab_gguf(merged, tmp_path / "tinyllama.gguf"))
    assert info.add_bos is False
    text, spans = render_with_spans(tok, template, [*MESSAGES, {"role": "assistant", "content": "Apple."}])
    trained = tokenize_with_labels(tok, [text], [spans])["input_ids"][0]
    served_prompt = chat_formatter(info)[0](messages=MESSAGES).prompt
    llm = llama_cpp.Llama(model_path=str(info.path), vocab_only=True, verbose=False)
    served = llm.tokenize(served_prompt.encode("utf-8"), add_bos=info.add_bos, special=True)
    llm.close()
    return served, trained


def test_tinyllama_served_prompt_starts_as_the_training_tokens(shared_dir: Path, tmp_path: Path) -> None:
    served, trained = _served_and_trained(shared_dir, tmp_path)
    assert served[0] == trained[0] != 1  # no BOS (id 1) in front of either
    cut = served.index(2) + 1  # up to the first turn's end (</s>, id 2): the BOS question alone
    assert served[:cut] == trained[:cut]


def test_tinyllama_served_prompt_is_a_prefix_of_training(shared_dir: Path, tmp_path: Path) -> None:
    """Every token of the served multi-turn prompt, the '▁<' that opens it included (transformers puts '▁'
    only at the start: the GGUF's template serves it as a leading space, core/export/space_prefix.py), and
    no '▁' after any </s> (add_space_prefix=false)."""
    served, trained = _served_and_trained(shared_dir, tmp_path)
    assert trained[:len(served)] == served
    assert served.count(2) == len(MESSAGES)  # every earlier turn's </s>, each followed by the trained tokens


def test_models_not_from_a_run_keep_their_tokenizer_setting(shared_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "TinyLlama"
    shutil.copytree(shared_dir / "tokenizers" / "TinyLlama-1.1B-Chat-v1.0", folder)
    assert runtime_adds_bos(folder) is None


@pytest.mark.parametrize("template", ["{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"])
def test_a_run_whose_template_writes_bos_keeps_the_runtime_bos(shared_dir: Path, tmp_path: Path,
                                                              template: str) -> None:
    merged = _run_with_merged(tmp_path, shared_dir / "tokenizers" / "TinyLlama-1.1B-Chat-v1.0", template)
    assert runtime_adds_bos(merged) is None


def test_verify_accepts_exactly_the_documented_leading_space(shared_dir: Path, tmp_path: Path) -> None:
    """export --verify compares the GGUF's template with training's modulo the one documented leading space
    (core/export/space_prefix.py), and plain prompts tokenize as transformers does once sent after it."""
    import llama_cpp
    from ftwiz.core.chat_templates import record_of_model_dir
    from ftwiz.core.export.space_prefix import MARK
    from ftwiz.core.export.verify import _chat_check, _gguf_ids, _hf_ids, _served_lead
    from transformers import AutoTokenizer

    src = shared_dir / "tokenizers" / "TinyLlama-1.1B-Chat-v1.0"
    template = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]
    merged = _run_with_merged(tmp_path, src, template)
    gguf_path = _vocab_gguf(merged, tmp_path / "tinyllama.gguf")
    tok, record = AutoTokenizer.from_pretrained(merged), record_of_model_dir(merged)
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        assert llm.metadata["tokenizer.chat_template"] == MARK + template
        check, expected = _chat_check(llm, tok, record)
        assert check.passed, check.detail
        assert expected and expected.startswith("<|system|>")  # training's text, without the space
        lead = _served_lead(llm, tok)
        for text in ("Hello world", "The capital of France is", expected):
            assert _gguf_ids(llm, lead(text) + text) == _hf_ids(tok, text, runtime_bos=False)
        assert _gguf_ids(llm, "Hello world") != _hf_ids(tok, "Hello world", runtime_bos=False)  # the cost
    finally:
        llm.close()
    other = dataclasses.replace(record, template=" " + template)  # a template that itself opens with a space
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        assert _chat_check(llm, tok, other)[0].passed is False  # any other difference still fails
    finally:
        llm.close()


def test_eval_prompts_a_gguf_as_it_is_served(shared_dir: Path, tmp_path: Path) -> None:
    """``ftwiz eval --gguf`` scores the GGUF on the prompt llama.cpp is served (training's tokens, the first
    '▁<' included), while the HF engines keep the training template as it is."""
    import llama_cpp
    from ftwiz.core.data.template import render_with_spans, tokenize_with_labels
    from ftwiz.core.evaluate.prompts import renderer_for_tokenizer, served_through
    from transformers import AutoTokenizer

    src = shared_dir / "tokenizers" / "TinyLlama-1.1B-Chat-v1.0"
    template = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]
    merged = _run_with_merged(tmp_path, src, template)
    tok = AutoTokenizer.from_pretrained(merged)
    renderer = renderer_for_tokenizer(tok, template=template)
    assert served_through(renderer, None) is renderer
    llm = llama_cpp.Llama(model_path=str(_vocab_gguf(merged, tmp_path / "tl.gguf")), vocab_only=True, verbose=False)
    try:
        served = served_through(renderer, llm)
        conversation = [*MESSAGES, {"role": "assistant", "content": "Apple."}]
        text, spans = render_with_spans(tok, template, conversation)
        trained = tokenize_with_labels(tok, [text], [spans])["input_ids"][0]
        scored = llm.tokenize(served.render(conversation, generation_prompt=False).encode("utf-8"), add_bos=False,
                              special=True)
        assert scored == trained
        assert llm.tokenize(renderer.render(conversation, generation_prompt=False).encode("utf-8"), add_bos=False,
                            special=True)[0] != trained[0]  # the training text alone loses its first '▁'
    finally:
        llm.close()
