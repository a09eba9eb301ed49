"""An output folder ftwiz cannot write to (a file in the way, read-only, no permission) is an error naming the
folder and a fix (exit 2), not a Python traceback; nothing is left behind."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest
from ftwiz.core.atomic import atomic_path
from ftwiz.core.errors import FtwizError


def test_export_under_a_file_names_the_file(tiny_llama: Path, tmp_path: Path, ftwiz_env, capsys) -> None:
    from ftwiz.core.cli import main

    blocker = tmp_path / "model.gguf"
    blocker.write_bytes(b"not a folder")
    code = main(["export", str(tiny_llama), "--quant", "F16", "--out", str(blocker / "x.gguf")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert f"{blocker} is a file, not a folder" in " ".join(err.split())
    assert blocker.read_bytes() == b"not a folder"


@pytest.mark.parametrize("code, words", [(errno.EROFS, "Read-only file system"),
                                         (errno.EACCES, "Permission denied")])
def test_unwritable_folder_is_named(tmp_path: Path, monkeypatch, code: int, words: str) -> None:
    def refuse(*args, **kwargs):
        raise OSError(code, words)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # a read-only mount or chmod 555 as a non-root user
    with pytest.raises(FtwizError) as err, atomic_path(tmp_path / "out" / "x.gguf"):
        pytest.fail("the body must not run")
    assert f"cannot write into {tmp_path / 'out'}: {words}" in str(err.value)
    assert "--out" in (err.value.fix or "")
    assert list((tmp_path / "out").iterdir()) == []

