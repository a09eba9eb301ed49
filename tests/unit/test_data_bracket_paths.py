"""A dataset file or folder whose name holds glob characters ('chats [v2].jsonl') is used as it is: it was read
as a glob pattern ('[v2]' = one of 'v', '2'), matched nothing, and `ftwiz data check`/`train` said no files match."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def test_a_dataset_named_with_brackets_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.cli import main
    from ftwiz.core.data.loaders import expand_paths

    folder = tmp_path / "data [v2]"
    folder.mkdir()
    data = folder / "chats [v2].jsonl"
    shutil.copyfile(DEMO_DATA, data)
    assert expand_paths(str(data)) == [data]
    assert expand_paths(str(folder)) == [data]
    assert expand_paths("chats [v2].jsonl", dataset_dir=str(folder)) == [data]
    from ftwiz.core.cli import console as console_module
    from rich.console import Console

    monkeypatch.setitem(vars(console_module), "console", Console(width=400))  # no wrapping inside the path
    capsys.readouterr()
    assert main(["data", "check", str(data)]) == 0
    shown = capsys.readouterr().out
    assert "records read 392, kept 392" in shown and f"{data}: openai" in shown  # the name printed as it is
    assert main(["data", "preview", str(data), "--model", "demo"]) == 0
    assert f"Sample from {data}, line " in capsys.readouterr().out


def test_a_glob_still_matches(tmp_path: Path) -> None:
    from ftwiz.core.data.loaders import expand_paths

    for name in ("a.jsonl", "b.jsonl"):
        shutil.copyfile(DEMO_DATA, tmp_path / name)
    assert expand_paths(str(tmp_path / "[ab].jsonl")) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    assert expand_paths(str(tmp_path / "*.jsonl")) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
