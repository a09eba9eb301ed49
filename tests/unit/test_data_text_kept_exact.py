"""What a record says is what is trained: line breaks, blank lines and line-end spaces are kept as written.

The cleaning step collapsed every run of 3+ newlines to 2 and removed spaces at line ends, inside the
answers: a Python answer lost one of PEP 8's two blank lines between functions, a Markdown hard line break
("two spaces, newline") became a plain newline, and a raw-text document for continued pre-training lost its
layout (156 of the 999 records of LLaMA-Factory's alpaca_en_demo were changed). Only line endings
(CRLF -> LF), Unicode NFC and the whitespace around a whole message are normalised.

Oracle: transformers' ``apply_chat_template`` on the record exactly as written in the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import prepare_for_training
from ftwiz.core.recipe import parse_recipe

CODE = ("Here it is:  \nthe code below.\n\n```python\nimport os\n\n\ndef first():\n    return 1\n\n\n"
        "def second():\n\treturn 2\n```")


@pytest.fixture(scope="module")
def tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def _prepare(tok, path: Path, **recipe):
    data = {"model_name_or_path": "x", "dataset": [str(path)], "cutoff_len": 1024, "val_size": 0.0,
            "test_size": 0.0, **recipe}
    return prepare_for_training(parse_recipe(data), tok)


def test_an_answer_with_code_and_markdown_is_trained_as_written(tok, tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Write two functions, PEP 8 style."},
                {"role": "assistant", "content": CODE}]
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps({"messages": messages}) + "\n", encoding="utf-8")

    prepared = _prepare(tok, path)
    assert prepared.splits["train"][0]["messages"][-1]["content"] == CODE
    expected = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    assert prepared.train[0]["input_ids"] == expected


def test_a_raw_text_document_keeps_its_blank_lines(tok, tmp_path: Path) -> None:
    text = "def first():\n    return 1\n\n\ndef second():  \n    return 2"
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps({"text": text}) + "\n", encoding="utf-8")

    prepared = _prepare(tok, path, stage="pt")
    expected = tok(text + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert prepared.train[0]["input_ids"] == expected


def test_line_endings_and_outer_whitespace_are_still_normalised(tok, tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi\r\nthere  "},
                                             {"role": "assistant", "content": "\n Hello\r\n\r\n\r\nyou \n"}]}) + "\n",
                    encoding="utf-8")
    record = _prepare(tok, path).splits["train"][0]
    assert [m["content"] for m in record["messages"]] == ["Hi\nthere", "Hello\n\n\nyou"]
