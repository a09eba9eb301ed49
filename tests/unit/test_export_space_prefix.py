"""Which chat templates get the served leading space (core/export/space_prefix.py).

Oracle: transformers' own tokenization with a prepend_scheme=first tokenizer (TinyLlama saved by
transformers 5): a text gets the start-of-text '▁' exactly when ``opens_with_plain_text`` says so.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from ftwiz.core.export.space_prefix import MARK, opens_with_plain_text, served_chat_template, split_served

TEXTS = ["<|user|>\nHi</s>", "Hello world", "<s>[INST] Hi [/INST]", "</s>Hello", " Hello", "\nHello", "[INST]x"]


@pytest.fixture(scope="module")
def resaved(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tl") / "tinyllama"
    AutoTokenizer.from_pretrained(shared_dir / "tokenizers" / "TinyLlama-1.1B-Chat-v1.0").save_pretrained(folder)
    return folder


def _tj(folder: Path) -> dict:
    return json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))


def test_plain_text_openings_are_where_transformers_puts_the_first_space(resaved: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resaved)
    added = [t["content"] for t in _tj(resaved)["added_tokens"]]
    for text in TEXTS:
        first = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False).input_ids)[0]
        gets_space = first.startswith("\u2581") and not text.startswith(" ")
        assert opens_with_plain_text(text, added) is gets_space, (text, first)


def test_only_templates_whose_prompts_all_open_with_plain_text_get_the_space(resaved: Path, tmp_path: Path,
                                                                           caplog) -> None:
    folder = tmp_path / "m"
    shutil.copytree(resaved, folder)
    plain = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}{% endfor %}"
    token_first = "{{ bos_token }}" + plain
    mixed = "{% if messages[0].role == 'system' %}{{ bos_token }}{% endif %}" + plain
    served = served_chat_template(plain, _tj(folder), folder)
    assert served == MARK + plain and split_served(served) == (" ", plain)
    assert served_chat_template(served, _tj(folder), folder) == served  # exported twice: one space
    assert served_chat_template(token_first, _tj(folder), folder) == token_first
    with caplog.at_level(logging.WARNING):
        assert served_chat_template(mixed, _tj(folder), folder) == mixed
    assert "cannot reproduce" in caplog.text
