"""`--events PATH` naming a folder (or an unwritable place) is an error naming the path, exit 2, no traceback
and no export written."""

from __future__ import annotations

from pathlib import Path


def test_events_path_is_a_folder(tiny_llama: Path, tmp_path: Path, ftwiz_env, capsys) -> None:
    from ftwiz.core.cli import main

    out = tmp_path / "m.gguf"
    code = main(["export", str(tiny_llama), "--quant", "F16", "--out", str(out), "--events", str(tmp_path)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert f"cannot write the events file {tmp_path}: Is a directory" in err
    assert not out.exists()
