"""A tokenizer.json that is not UTF-8 (saved as Latin-1/cp1252 by an editor) is refused with the file named.

Oracle: JSON text is UTF-8 (RFC 8259) and Hugging Face ``tokenizers`` refuses such a file too ("stream did not
contain valid UTF-8"); the export said so with a UnicodeDecodeError traceback, on the cold route (bytes read
with numpy) and the json route alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tok"
    folder.mkdir()
    content = {"version": "1.0", "added_tokens": [], "pre_tokenizer": {"type": "ByteLevel"},
               "decoder": {"type": "ByteLevel"},
               "model": {"type": "BPE", "byte_fallback": False, "vocab": {"a": 0, "b": 1, "ab": 2, "caf\u00e9": 3},
                         "merges": [["a", "b"]]}}
    text = json.dumps(content, indent=2, ensure_ascii=False).encode("utf-8")
    (folder / "tokenizer.json").write_bytes(text.replace("caf\u00e9".encode("utf-8"), "caf\u00e9".encode("latin-1")))
    return folder


@pytest.mark.parametrize("route", ["cold", "json"])
def test_a_tokenizer_json_in_latin1_is_an_ftwiz_error_naming_the_file(tmp_path: Path, monkeypatch, route: str) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.vocab import load_vocab
    from ftwiz.core.export.vocab_cache import read_vocab

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    folder = _folder(tmp_path)
    tokenizers = pytest.importorskip("tokenizers")
    with pytest.raises(Exception, match="UTF-8"):  # the library the model was trained with refuses it too
        tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    with pytest.raises(FtwizError) as refused:
        read_vocab(folder, 4) if route == "cold" else load_vocab(folder, 4)
    assert str(folder / "tokenizer.json") in str(refused.value)
    assert "utf-8" in str(refused.value).lower()


@pytest.mark.parametrize("damage", ["bom", "latin-1"])
def test_a_tokenizer_config_an_editor_saved_badly_is_an_ftwiz_error_naming_it(tiny_qwen2: Path, tmp_path: Path,
                                                                              damage: str) -> None:
    """tokenizer_config.json saved with a BOM (Windows Notepad) or as Latin-1 after editing its chat template:
    transformers refuses it too; the export stopped in gguf-py with a JSONDecodeError traceback (and
    ``ftwiz export --check`` said exportable)."""
    import shutil

    import transformers
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.pipeline import export_model

    model = tmp_path / "model"
    shutil.copytree(tiny_qwen2, model)
    config = model / "tokenizer_config.json"
    text = config.read_text(encoding="utf-8").replace('"tokenizer_class"', '"note": "caf\u00e9", "tokenizer_class"')
    config.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8") if damage == "bom" else text.encode("latin-1"))
    with pytest.raises(ValueError):  # the library the model is trained with refuses it too
        transformers.AutoTokenizer.from_pretrained(model)
    with pytest.raises(FtwizError) as refused:
        export_model(model, ["F16"], out=tmp_path / "m.gguf")
    assert str(config) in str(refused.value) and "not valid JSON" in str(refused.value)
    assert not (tmp_path / "m.gguf").exists()
