"""`ftwiz data prepare --out DIR` never replaces files already in DIR without --overwrite.

A user ran `ftwiz data prepare d/train.jsonl --out d`: their 24-record train.jsonl was silently replaced by
the 20-record train split (the other 4 moved to validation/test, in another format).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main


def test_prepare_into_the_users_own_data_folder_keeps_their_file(tiny_qwen2: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    own = folder / "train.jsonl"
    own.write_text("".join(json.dumps({"instruction": f"q{i} ☕", "output": f"a{i}"}) + "\n" for i in range(24)),
                   encoding="utf-8")
    before = own.read_bytes()
    argv = ["data", "prepare", str(own), "--model", str(tiny_qwen2), "--out", str(folder)]
    assert cli_main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "already holds train.jsonl" in err and "--overwrite" in err and "Traceback" not in err
    assert own.read_bytes() == before and not (folder / "validation.jsonl").exists()
    assert cli_main([*argv, "--overwrite"]) == 0
    assert len(own.read_text(encoding="utf-8").splitlines()) < 24 and (folder / "validation.jsonl").is_file()
