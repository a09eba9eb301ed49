"""Ctrl-C during `--overwrite` of an existing output: the message says the previous file is unchanged (it is),
instead of claiming to have removed a file the user still sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core import atomic
from ftwiz.core.interrupted import interrupted_message


def test_interrupted_replacement_keeps_and_says_previous(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "DISCARDED", type(atomic.DISCARDED)(maxlen=atomic.DISCARDED.maxlen))
    monkeypatch.setattr(atomic, "COMPLETED", type(atomic.COMPLETED)(maxlen=atomic.COMPLETED.maxlen))
    old, new = tmp_path / "m-F16.gguf", tmp_path / "n-F16.gguf"
    old.write_bytes(b"previous export")
    for final, overwrite in ((old, True), (new, False)):
        with pytest.raises(KeyboardInterrupt), atomic.atomic_path(final, overwrite=overwrite) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    message = interrupted_message(["export", "m", "--overwrite"])
    assert old.read_bytes() == b"previous export" and not new.exists()
    assert f"the previous file is unchanged: {old}" in message
    assert f"removed the unfinished {new}" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-F16.gguf"]
