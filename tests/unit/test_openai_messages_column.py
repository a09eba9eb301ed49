"""``--format openai --column messages=YOUR_COLUMN`` (and a recipe's ``formatting: openai`` with ``columns:
{messages: ...}``) reads the user's column as the OpenAI ``messages`` list.

Before, ``messages`` on the left was always taken for LLaMA-Factory's ShareGPT column and renamed to
``conversations``, so the openai reader rejected every record with "'messages' is missing ... map it with --column
messages=YOUR_COLUMN": the very mapping the user had given. Oracle: the records as written.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftwiz.core.data.pipeline import check_dataset


def _chats(path: Path) -> list[list[dict[str, str]]]:
    chats = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"What is {i}+{i}?"},
              {"role": "assistant", "content": f"It is {2 * i}."}] for i in range(5)]
    path.write_text(json.dumps([{"msgs": chat, "id": n} for n, chat in enumerate(chats)]), encoding="utf-8")
    return chats


def test_openai_format_with_a_mapped_messages_column_keeps_every_record(tmp_path: Path) -> None:
    chats = _chats(tmp_path / "chats.json")
    report = check_dataset(str(tmp_path / "chats.json"), formatting="openai", columns={"messages": "msgs"})
    assert (report.read, report.kept, report.rejected) == (5, 5, {})  # every record was rejected before
    first = report.samples[0]["messages"]
    assert [(m["role"], m["content"]) for m in first] == [(m["role"], m["content"]) for m in chats[0]]


def test_auto_format_with_the_same_mapping_reads_the_same_turns(tmp_path: Path) -> None:
    chats = _chats(tmp_path / "chats.json")
    report = check_dataset(str(tmp_path / "chats.json"), columns={"messages": "msgs"})  # LLaMA-Factory's reading
    assert report.kept == 5
    assert [(m["role"], m["content"]) for m in report.samples[2]["messages"]] == \
        [(m["role"], m["content"]) for m in chats[2]]
