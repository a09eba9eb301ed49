"""A config.json that does not belong to the weights is refused before the export writes anything.

Without the check the export reported success and llama.cpp then refused the file ("Failed to load model").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError


def _with_config(tiny: Path, tmp_path: Path, **changes: int) -> Path:
    model = tmp_path / "model"
    shutil.copytree(tiny, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(changes)
    (model / "config.json").write_text(json.dumps(cfg))
    return model


@pytest.mark.parametrize("field", ["hidden_size", "intermediate_size", "vocab_size"])
def test_config_that_does_not_match_the_weights_is_named(tiny_llama: Path, tmp_path: Path, field: str) -> None:
    from ftwiz.core.export.convert import convert_to_gguf

    cfg = json.loads((tiny_llama / "config.json").read_text())
    model = _with_config(tiny_llama, tmp_path, **{field: cfg[field] * 2})
    out = tmp_path / "out"
    with pytest.raises(FtwizError) as err:
        convert_to_gguf(model, out / "m.gguf", "F16")
    assert "config.json" in str(err.value.where) and field in str(err.value)
    assert "restore the model's own config.json" in err.value.fix
    assert not out.exists() or not list(out.iterdir())


def test_llama_cpp_refuses_what_the_check_stops(tiny_llama: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise, against the oracle: the same file written without the check does not load in llama.cpp."""
    from ftwiz.core.export import convert
    from llama_cpp import Llama

    cfg = json.loads((tiny_llama / "config.json").read_text())
    model = _with_config(tiny_llama, tmp_path, intermediate_size=cfg["intermediate_size"] * 2)
    monkeypatch.setattr(convert, "check_shapes", lambda *_args: None)
    gguf = convert.convert_to_gguf(model, tmp_path / "unchecked.gguf", "F16")
    with pytest.raises((ValueError, RuntimeError)):
        Llama(model_path=str(gguf), n_ctx=64, verbose=False)
