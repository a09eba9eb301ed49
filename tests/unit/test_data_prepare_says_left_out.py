"""`ftwiz data prepare` says what it leaves out, as `ftwiz train` does on the same data.

A user prepared 40 records with --cutoff-len 64, half of them longer: it printed only 'wrote train/validation/
test splits ...' while train.jsonl held 16 of the 32 training records and validation/test half theirs; train
said '16 of 40 records are not trained ...' and '4 of 8 held-out records ... are not evaluated'.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main


def test_prepare_says_how_many_records_it_leaves_out_and_the_files_agree(tiny_qwen2: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mix.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"q{i}"},
        {"role": "assistant", "content": "Arr matey " * 60 if i % 2 == 0 else "Ahoy!"}]}) + "\n" for i in range(40)),
        encoding="utf-8")
    out = tmp_path / "out"
    assert cli_main(["data", "prepare", str(data), "--model", str(tiny_qwen2), "--cutoff-len", "64",
                     "--out", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    held = [r for r in rejects if r["message"].startswith(("validation split:", "test split:"))]
    trained = len(rejects) - len(held)
    assert trained and held  # the oracle: what the written files hold
    assert f"{trained} of 40 records are not trained (over_max_length {trained})" in said
    assert f"{len(held)} of " in said and "held-out records" in said and "are not evaluated" in said
