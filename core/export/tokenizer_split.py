"""A byte-level BPE tokenizer.json parsed with its two big members left as bytes.

``json.loads`` spends most of a Qwen2 tokenizer.json's parse (11 MB) on ``model.vocab`` (151k entries) and
``model.merges`` (151k pairs), whose Python objects the export only turns back into bytes. Here they are cut
out of the text, the rest is parsed by ``json``, and they are read with numpy
(:mod:`ftwiz.core.export.vocab_raw`, :mod:`ftwiz.core.export.merges_raw`). Layouts those readers do not
handle are parsed by ``json`` as before, so the result never depends on the route taken.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.export.merges_raw import PackedStrings, array_span, pack_merges
from ftwiz.core.export.tokenizer_json_check import checked_tokenizer_json
from ftwiz.core.export.vocab_raw import RawVocab, scan_vocab, vocab_span

_MARK = {"merges": "\u0000ftwiz: merges read from the bytes", "vocab": "\u0000ftwiz: vocab read from the bytes"}
_MERGES_MARK, _VOCAB_MARK = (json.dumps(_MARK[k]).encode() for k in ("merges", "vocab"))


@dataclass
class SplitTokenizer:
    """tokenizer.json parsed; ``merges`` (GGUF items) and ``vocab`` (raw entries) are set when they were read
    from the bytes, and then the parsed dict's ``model.merges`` / ``model.vocab`` are empty."""

    parsed: dict[str, Any]
    merges: PackedStrings | None = None
    vocab: RawVocab | None = None

    def restore_vocab(self) -> None:
        """Put ``model.vocab`` back into the parsed dict, parsed by json (for the routes that need the dict)."""
        if self.vocab is not None:
            self.parsed["model"]["vocab"] = json.loads(self.vocab.source.decode("utf-8"))
            self.vocab = None


def read_split(path: Path, wanted: Callable[[dict[str, Any]], bool]) -> SplitTokenizer | None:
    """``path`` (a tokenizer.json) parsed, with its merges and vocab read from the bytes when ``wanted(parsed)``
    says so (a byte-level BPE), else parsed in place. None when the file is not laid out as expected (the
    caller then parses it whole; errors are reported there)."""
    raw = path.read_bytes()
    span = array_span(raw)
    if span is None:
        return None
    start, end, key_at = span
    cut = vocab_span(raw, key_at)
    # each cut part is replaced by a marker no tokenizer.json holds: found anywhere but at model.merges /
    # model.vocab, the cut was another object's array (a file laid out otherwise) and json parses it all
    if cut is None:
        text = raw[:start] + _MERGES_MARK + raw[end + 1:]
    else:
        text = raw[:cut[0]] + _VOCAB_MARK + raw[cut[1] + 1:start] + _MERGES_MARK + raw[end + 1:]
    try:
        parsed = json.loads(text.decode("utf-8"))
    except ValueError:  # not JSON, not UTF-8, a BOM: the whole-file parse says what is wrong
        return None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    if not isinstance(model, dict) or model.get("merges") != _MARK["merges"] or (
            cut is not None and model.get("vocab") != _MARK["vocab"]):
        return None
    model["merges"] = []
    if cut is not None:
        model["vocab"] = {}
    split = SplitTokenizer(parsed)
    if wanted(parsed):
        split.merges = pack_merges(raw[start: end + 1])
        if cut is not None:
            split.vocab = scan_vocab(raw[cut[0]: cut[1] + 1])
    try:
        if split.merges is None:
            model["merges"] = json.loads(raw[start: end + 1].decode("utf-8"))
        if cut is not None and split.vocab is None:
            model["vocab"] = json.loads(raw[cut[0]: cut[1] + 1].decode("utf-8"))
    except ValueError:
        return None
    return split


def read_tokenizer_json_split(model_dir: Path) -> SplitTokenizer:
    """The tokenizer.json parsed (``parsed`` is None when there is none), a byte-level BPE's merges and vocab
    read straight from its bytes where they can be (:func:`read_split`; the dict's ``model.merges`` /
    ``model.vocab`` are then empty: pass ``merges`` to ``write_vocab`` as ``packed_merges``, build the
    vocabulary with :func:`ftwiz.core.export.vocab_raw.assemble`). FtwizError, naming the file and field, for
    a tokenizer.json whose parts the export reads are not what the tokenizers library writes."""
    from ftwiz.core.export.vocab import _load_json, is_byte_level_bpe, read_tokenizer_json

    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():  # vocab.json + merges.txt: built by transformers, merges packed by write_vocab
        return SplitTokenizer(read_tokenizer_json(model_dir))  # type: ignore[arg-type]
    split = read_split(path, is_byte_level_bpe)
    if split is None:
        split = SplitTokenizer(_load_json(path))
    checked_tokenizer_json(split.parsed, path)
    return split
