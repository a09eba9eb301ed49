"""Alpaca records with an ``input`` train on the text LLaMA-Factory trains them on.

Oracle: LLaMA-Factory's Alpaca converter (user content ``"\\n".join([instruction, input])``, history pairs
before it, ``system`` first) rendered by transformers' ``apply_chat_template`` with the model's own template;
a recipe ported from LLaMA-Factory with the same dataset_info.json must see exactly that text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"


def _llamafactory_messages(record: dict) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    for user, assistant in record.get("history") or []:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    query = [text for text in (record["instruction"], record.get("input")) if text]
    return messages + [{"role": "user", "content": "\n".join(query)},
                       {"role": "assistant", "content": record["output"]}]


def test_alpaca_input_follows_the_instruction_on_the_next_line(shared_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoTokenizer

    model = shared_dir / "tokenizers" / "Qwen2-1.5B-Instruct-Boundless"
    tok = AutoTokenizer.from_pretrained(model)
    path = CORPUS / "alpaca_system_history.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    seen = set()
    for index in range(len(records)):
        assert cli_main(["data", "preview", str(path), "--model", str(model), "--json", "--index", str(index)]) == 0
        shown = json.loads(capsys.readouterr().out)
        which = int(shown["record"].rsplit("record ", 1)[1])  # the preview names the record it shows
        seen.add(which)
        assert shown["text"] == tok.apply_chat_template(_llamafactory_messages(records[which]), tokenize=False)
    assert seen == set(range(len(records)))
    assert "How often should I oil my chain?\nI ride every day in the rain.<|im_end|>" in tok.apply_chat_template(
        _llamafactory_messages(records[0]), tokenize=False)  # the record with an input
