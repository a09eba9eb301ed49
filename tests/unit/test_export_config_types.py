"""A config.json whose size field is not a whole number is named (file, field, value) with a fix, by both
`ftwiz export --check` and the export itself, instead of a ValueError traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def test_non_integer_hidden_size_is_named(tiny_llama: Path, tmp_path: Path, ftwiz_env, capsys) -> None:
    from ftwiz.core.cli import main

    model = tmp_path / "model"
    shutil.copytree(tiny_llama, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["hidden_size"] = "big"
    (model / "config.json").write_text(json.dumps(cfg))
    for args in (["--check"], ["--quant", "F16", "--out", str(tmp_path / "m.gguf")]):
        code = main(["export", str(model), *args])
        captured = capsys.readouterr()
        text = " ".join((captured.out + captured.err).split())
        assert code in (1, 2) and "Traceback" not in text
        assert "hidden_size is 'big', not a positive whole number" in text and "config.json" in text
    assert not (tmp_path / "m.gguf").exists()
