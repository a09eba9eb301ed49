"""`ftwiz data check --model M --cutoff-len N` says how many conversations training would drop for length.

It said "kept 24, rejected 0" for 24 records all longer than --cutoff-len 64; `ftwiz train` then stopped
with "every training record is longer than cutoff_len". The oracle is transformers' apply_chat_template.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main

CUTOFF = 48


def test_check_counts_conversations_over_cutoff_as_transformers_tokenizes_them(
        tiny_qwen2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    records = [{"instruction": "Say " + "cat " * n, "output": "A cat.\nTwo cats ☕"} for n in range(0, 60, 4)]
    data = tmp_path / "mixed.json"
    data.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    lengths = [len(tok.apply_chat_template([{"role": "user", "content": r["instruction"]},
                                            {"role": "assistant", "content": r["output"]}], tokenize=True,
                                           return_dict=True)["input_ids"]) for r in records]
    longer = sum(n > CUTOFF for n in lengths)
    assert 0 < longer < len(records)
    assert cli_main(["data", "check", str(data), "--model", str(tiny_qwen2), "--cutoff-len", str(CUTOFF),
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["over_cutoff"] == {"over_cutoff": longer, "dropped": longer, "truncated": 0}
    assert cli_main(["data", "check", str(data), "--model", str(tiny_qwen2), "--cutoff-len", "4096"]) == 0
    assert "longer than cutoff_len" not in capsys.readouterr().out
    assert min(lengths) > 16  # the smallest cutoff_len a recipe takes
    assert cli_main(["data", "check", str(data), "--model", str(tiny_qwen2), "--cutoff-len", "16"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"{len(records)} of {len(records)} records are longer than cutoff_len 16" in said
    assert "nothing to train on" in said
