"""A dataset pattern that matches no file ftwiz reads said only which file endings ftwiz reads. It now says what
to check: the folder it searched does not exist, or the files it matched are not dataset files, or nothing there
matches."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.data.loaders import expand_paths
from ftwiz.core.errors import FtwizError


def _fix(pattern: str, **kwargs: str) -> str:
    with pytest.raises(FtwizError) as caught:
        expand_paths(pattern, **kwargs)
    assert f"no dataset files match '{pattern}'" in caught.value.what
    return caught.value.fix or ""


def test_an_empty_pattern_says_what_to_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.md").write_text("# notes\n", encoding="utf-8")
    (tmp_path / "ds" / "qa.xlsx").write_bytes(b"PK")
    assert _fix("dss/*.jsonl").startswith(f"the folder {tmp_path / 'dss'} does not exist")
    assert _fix("ds/*").startswith("it matches notes.md, qa.xlsx, which are not dataset files")
    assert _fix("ds/*.csv").startswith(f"nothing in {tmp_path / 'ds'} matches it")
    assert ".jsonl" in _fix("ds/*.csv")
    assert _fix("*.csv", dataset_dir=str(tmp_path / "ds")).startswith(f"nothing in {tmp_path / 'ds'} matches")
