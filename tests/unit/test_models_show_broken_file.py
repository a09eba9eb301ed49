"""``ftwiz models show FILE.gguf`` of a file not in the registry: a text file named .gguf, or a GGUF copy cut
off mid-way, was shown as a model ("exists yes", quant "-") with exit status 0, where chat, serve and register
refuse it. Oracle: the file's own bytes (not a GGUF at all / fewer bytes than its tensors need)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_models_show_names_a_broken_gguf(tmp_path: Path, tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main
    from ftwiz.core.export.pipeline import export_model

    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    good = Path(export_model(tiny_qwen2, ["Q8_0"], out=tmp_path / "out" / "m.gguf").gguf_paths[0])
    moved = tmp_path / "moved"
    moved.mkdir()
    whole, cut, text = moved / "whole.gguf", moved / "cut.gguf", moved / "notes.gguf"
    whole.write_bytes(good.read_bytes())
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text.write_text("hi\n", encoding="utf-8")

    assert main(["models", "show", str(whole)]) == 0  # an intact copy is still shown
    assert "Q8_0" in capsys.readouterr().out
    for path, said in ((cut, "cut off"), (text, "not a readable GGUF")):
        assert main(["models", "show", str(path)]) != 0
        err = capsys.readouterr().err
        assert said in err and path.name in err
