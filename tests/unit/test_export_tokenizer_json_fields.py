"""A hand-edited tokenizer.json whose parts the export reads have the wrong types is refused naming the file and
the field, by `ftwiz export` and by `ftwiz export --check`, on the cold route (bytes read with numpy) and the
json route alike; it ended in a Python traceback.

Oracle: the tokenizers library (what training loads) refuses each of these files too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VOCAB = {"a": 0, "b": 1, "ab": 2}


def _content(**changes) -> dict:
    content = {"version": "1.0", "added_tokens": [{"id": 3, "content": "<|end|>", "special": True}],
               "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
               "model": {"type": "BPE", "byte_fallback": False, "vocab": dict(VOCAB), "merges": [["a", "b"]]}}
    content.update(changes)
    return content


CASES = {
    "added_tokens null": (_content(added_tokens=None), "added_tokens"),
    "added token without content": (_content(added_tokens=[{"id": 3, "special": True}]), "added_tokens[0]"),
    "added token with a number for content": (_content(added_tokens=[{"id": 3, "content": 7}]), "added_tokens[0]"),
    "model not an object": (_content(model="BPE"), "model"),
    "lone surrogate in a token": (_content(model={**_content()["model"], "vocab": {**VOCAB, "\ud800": 3}}),
                                  "model.vocab"),
    "lone surrogate in an added token": (_content(added_tokens=[{"id": 3, "content": "\udfff"}]),
                                         "added_tokens[0].content"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("route", ["cold", "json"])
def test_a_wrong_field_is_named_with_the_file(tmp_path: Path, monkeypatch, case: str, route: str) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.preflight import check_exportable
    from ftwiz.core.export.vocab import load_vocab
    from ftwiz.core.export.vocab_cache import read_vocab

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    content, field = CASES[case]
    folder = tmp_path / "tok"
    folder.mkdir()
    path = folder / "tokenizer.json"
    path.write_text(json.dumps(content, indent=2), encoding="utf-8")  # ensure_ascii: surrogates as \ud800
    tokenizers = pytest.importorskip("tokenizers")
    with pytest.raises(Exception):  # noqa: B017 - the library training loads with refuses it (its own errors)
        tokenizers.Tokenizer.from_file(str(path))
    with pytest.raises(FtwizError) as refused:
        read_vocab(folder, 8) if route == "cold" else load_vocab(folder, 8)
    assert refused.value.where.file == path and refused.value.where.field == field
    (folder / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                                                    "vocab_size": 8}), encoding="utf-8")
    check = check_exportable(folder)
    assert any(str(path) in problem and field in problem for problem in check.problems), check.problems
