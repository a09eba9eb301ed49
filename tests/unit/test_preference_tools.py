"""Preference pairs whose prompt offers tools are trained with those tool definitions in the prompt.

Supervised fine-tuning renders a record's ``tools`` (``apply_chat_template(tools=...)``), and so does serving;
the rows handed to TRL's DPO/KTO trainers had no ``tools`` key, so TRL rendered the prompt without them: the
pairs were learned after a prompt the model is never served. TRL reads a per-row ``tools`` (a JSON string).
ORPO's trainer ignores it, so ORPO refuses such records instead of dropping the tools.

Oracle: transformers' ``apply_chat_template`` with the record's tools, as TRL calls it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_family_tokenizers import load
from ftwiz.core.data.preference import preference_dataset
from ftwiz.core.errors import FtwizError

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PLAIN = {"messages": [{"role": "user", "content": "Hi there"}], "chosen": "Hello!", "rejected": "Go away."}
WITH_TOOLS = {"messages": [{"role": "user", "content": "Weather in Oslo?"}], "chosen": "Let me check.",
              "rejected": "No idea.", "tools": [WEATHER]}


@pytest.fixture(scope="module")
def qwen3(shared_dir: Path):
    return load("qwen3")


@pytest.mark.parametrize("stage", ["dpo", "kto"])
def test_the_trainer_rows_carry_the_records_tools(qwen3, stage: str) -> None:
    rows = list(preference_dataset([PLAIN, WITH_TOOLS], stage))  # a record without tools first
    for row in rows:
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
        rendered = qwen3.apply_chat_template(row["prompt"], tools=tools, tokenize=False, add_generation_prompt=True)
        wanted = qwen3.apply_chat_template(row["prompt"], tools=[WEATHER] if "Oslo" in str(row["prompt"]) else None,
                                           tokenize=False, add_generation_prompt=True)
        assert rendered == wanted
    assert any("get_weather" in json.dumps(r.get("tools")) for r in rows)


def test_orpo_refuses_records_with_tools_it_would_drop() -> None:
    with pytest.raises(FtwizError, match="tools"):
        preference_dataset([PLAIN, WITH_TOOLS], "orpo")
    assert len(preference_dataset([PLAIN], "orpo")) == 1
