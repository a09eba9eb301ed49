"""A BPE vocabulary read straight from tokenizer.json's bytes writes the GGUF metadata the json route writes.

Oracle: gguf-py's ``GGUFWriter`` fed by ``write_vocab`` parsing the folder with ``json`` (no cache). The
export's cold route (:func:`ftwiz.core.export.vocab_cache.read_vocab`, which reads ``model.vocab`` with numpy
where it can) must write a byte-identical file, or raise the same error. Each layout also states which route
it takes, so a fast path that silently stopped running fails here too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BASE = ["!", "\"", "\\", "/", "a", "b", "ab", "Ġ", "Ġa", "é", "日本", "🦙", "\\\"", "x/y", "<|im_end|>", "Ċ", "0", "01"]
MERGES = [["a", "b"], ["Ġ", "a"]]


def _tokenizer(vocab: dict[str, int] | str, added: list[dict] | None = None) -> dict:
    return {"version": "1.0", "added_tokens": added or [], "pre_tokenizer": {"type": "ByteLevel"},
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "dropout": None, "byte_fallback": False, "vocab": vocab, "merges": MERGES}}


def _write(folder: Path, content: dict, *, indent: int | None = 2, ascii_only: bool = False,
           vocab_text: str | None = None) -> None:
    folder.mkdir(exist_ok=True)
    text = json.dumps(content, indent=indent, ensure_ascii=ascii_only)
    if vocab_text is not None:  # a hand-written vocab object (layouts json.dumps never writes)
        text = text.replace('"@VOCAB@"', vocab_text)
    (folder / "tokenizer.json").write_text(text, encoding="utf-8")


def _metadata(folder: Path, n_vocab: int, out: Path, *, cold_route: bool) -> bytes:
    import gguf
    from ftwiz.core.export.gguf_kv import BulkGGUFWriter
    from ftwiz.core.export.vocab import write_vocab
    from ftwiz.core.export.vocab_cache import read_vocab

    writer = (BulkGGUFWriter if cold_route else gguf.GGUFWriter)(out, "qwen2")
    if cold_route:
        tj, merges, vocab = read_vocab(folder, n_vocab)
        write_vocab(writer, folder, n_vocab, tokenizer_json=tj, packed_merges=merges, vocab=vocab)
    else:
        write_vocab(writer, folder, n_vocab)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return out.read_bytes()


def _read_from_bytes(folder: Path, n_vocab: int) -> bool:
    """Whether the vocab is read from the bytes (True) or goes the json route (False)."""
    from ftwiz.core.export.tokenizer_split import read_tokenizer_json_split
    from ftwiz.core.export.vocab import END_OF_TURN
    from ftwiz.core.export.vocab_raw import assemble

    split = read_tokenizer_json_split(folder)
    return split.vocab is not None and assemble(split.vocab, split.parsed.get("added_tokens"), n_vocab,
                                                END_OF_TURN) is not None


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))


def _same_file(folder: Path, n_vocab: int, tmp_path: Path) -> None:
    expected = _metadata(folder, n_vocab, tmp_path / "json.gguf", cold_route=False)
    assert _metadata(folder, n_vocab, tmp_path / "cold.gguf", cold_route=True) == expected
    assert _metadata(folder, n_vocab, tmp_path / "warm.gguf", cold_route=True) == expected  # from the cache


ordered = {text: i for i, text in enumerate(BASE)}
shuffled = dict(reversed(list(ordered.items())))
added_special = [{"id": len(BASE), "content": "<|endoftext|>", "special": True},
                 {"id": len(BASE) + 2, "content": "<think>", "special": False},
                 {"id": ordered["<|im_end|>"], "content": "<|im_end|>", "special": True}]

FAST = {
    "ids in order, indented": (dict(indent=2), _tokenizer(ordered), len(BASE)),
    "compact, \\u escapes for non-ASCII": (dict(indent=None, ascii_only=True), _tokenizer(ordered), len(BASE)),
    "ids out of order": (dict(indent=2), _tokenizer(shuffled), len(BASE)),
    "added tokens, a gap and padding rows": (dict(indent=2), _tokenizer(ordered, added_special), len(BASE) + 6),
    "escaped slash and control-character escapes": (
        dict(indent=1, vocab_text='{"a\\/b": 0, "\\n": 1, "\\t\\u00e9": 2, "Ġ": 3, "a": 4, "b": 5, "ab": 6}'),
        _tokenizer("@VOCAB@"), 8),
}


@pytest.mark.parametrize("case", list(FAST))
def test_vocab_read_from_bytes_writes_the_json_routes_file(tmp_path: Path, cache, case: str) -> None:
    layout, content, n_vocab = FAST[case]
    folder = tmp_path / "tok"
    _write(folder, content, **layout)
    assert _read_from_bytes(folder, n_vocab)
    _same_file(folder, n_vocab, tmp_path)


JSON_ROUTE = {
    "two entries with one text (json keeps the last)": '{"a": 0, "b": 1, "ab": 2, "Ġ": 3, "a": 4}',
    "two texts with one id": '{"a": 0, "b": 1, "ab": 2, "Ġ": 2, "Ġa": 4}',
    "an added token moving a vocab entry": None,
    "an added token taking a vocab entry's row": None,
}


@pytest.mark.parametrize("case", list(JSON_ROUTE))
def test_layouts_json_decides_go_the_json_route_and_write_the_same_file(tmp_path: Path, cache, case: str) -> None:
    folder = tmp_path / "tok"
    if case == "an added token moving a vocab entry":
        _write(folder, _tokenizer(ordered, [{"id": len(BASE), "content": "ab", "special": True}]))
    elif case == "an added token taking a vocab entry's row":
        _write(folder, _tokenizer(ordered, [{"id": ordered["ab"], "content": "<|new|>", "special": True}]))
    else:
        _write(folder, _tokenizer("@VOCAB@"), vocab_text=JSON_ROUTE[case])
    n_vocab = len(BASE) + 1
    assert not _read_from_bytes(folder, n_vocab)
    _same_file(folder, n_vocab, tmp_path)


@pytest.mark.parametrize("vocab_text", ['{"a": 01, "b": 1, "ab": 2, "Ġ": 3}', '{"a": 0, "b": 1 2, "ab": 3}',
                                        '{"a": 0, "b": 1.0, "ab": 2}', '{"a": 0, "b": -1, "ab": 2}',
                                        '{"a": 0, "b": "1", "ab": 2}', '{"a": 0 "b": 1, "ab": 2}'])
def test_vocab_json_rejects_is_reported_as_json_reports_it(tmp_path: Path, cache, vocab_text: str) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.vocab_cache import read_vocab

    folder = tmp_path / "tok"
    _write(folder, _tokenizer("@VOCAB@"), vocab_text=vocab_text)
    try:
        json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        with pytest.raises(FtwizError, match="not valid JSON"):
            read_vocab(folder, 8)
    else:  # valid JSON with an id the export cannot use (1.0, -1, "1"): the json route's own outcome
        assert not _read_from_bytes(folder, 8)
        with pytest.raises(Exception) as json_route:
            _metadata(folder, 8, tmp_path / "json.gguf", cold_route=False)
        with pytest.raises(type(json_route.value)):
            _metadata(folder, 8, tmp_path / "cold.gguf", cold_route=True)


def test_an_id_beyond_the_models_rows_is_the_json_routes_error(tmp_path: Path, cache) -> None:
    from ftwiz.core.errors import FtwizError

    folder = tmp_path / "tok"
    _write(folder, _tokenizer(ordered))
    with pytest.raises(FtwizError, match="vocab_size") as json_route:
        _metadata(folder, len(BASE) - 1, tmp_path / "json.gguf", cold_route=False)
    with pytest.raises(FtwizError, match="vocab_size") as cold_route:
        _metadata(folder, len(BASE) - 1, tmp_path / "cold.gguf", cold_route=True)
    assert str(cold_route.value) == str(json_route.value)


def test_value_type_numbers_are_gguf_pys() -> None:
    import gguf
    from ftwiz.core.export.vocab_cache import GGUF_INT32, GGUF_STRING

    assert (int(gguf.GGUFValueType.STRING), int(gguf.GGUFValueType.INT32)) == (GGUF_STRING, GGUF_INT32)


def test_arrays_of_another_object_are_never_taken_for_the_models(tmp_path: Path, cache) -> None:
    """The model has no merges; a later top-level object's "merges" closes the file."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.tokenizer_split import read_tokenizer_json_split

    folder = tmp_path / "tok"
    content = _tokenizer(ordered)
    content["model"]["merges"] = []
    content["zz_extra"] = {"merges": [["a", "b"]]}
    _write(folder, content)
    split = read_tokenizer_json_split(folder)
    assert split.merges is None and split.vocab is None and split.parsed == content
    with pytest.raises(FtwizError, match="no merges") as json_route:
        _metadata(folder, len(BASE), tmp_path / "json.gguf", cold_route=False)
    with pytest.raises(FtwizError, match="no merges") as cold_route:
        _metadata(folder, len(BASE), tmp_path / "cold.gguf", cold_route=True)
    assert str(cold_route.value) == str(json_route.value)
