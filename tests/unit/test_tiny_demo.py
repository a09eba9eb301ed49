"""The demo's tokenizer can be had without building the model, and it is the very one the model carries."""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.tiny.demo import demo_base_model_dir, demo_tokenizer


def test_demo_tokenizer_alone_equals_the_built_models(demo_base_model: Path, tmp_path, monkeypatch) -> None:
    from transformers import AutoTokenizer

    built = AutoTokenizer.from_pretrained(demo_base_model)
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path))  # no built model here: the tokenizer is built alone
    assert not demo_base_model_dir().exists()
    alone = demo_tokenizer()
    assert alone.get_vocab() == built.get_vocab() and alone.chat_template == built.chat_template
    text = "<|im_start|>user\nTell me about the sea.<|im_end|>"
    assert alone(text)["input_ids"] == built(text)["input_ids"]
