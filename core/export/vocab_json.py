"""tokenizer.json read once per export: merges in GGUF's form, and gguf-py's SpecialVocab fed the parsed file.

A Qwen2 tokenizer.json is ~7 MB with 151k tokens and 151k merges; each ``json.load`` of it costs a few tenths
of a second, and gguf-py's ``SpecialVocab`` parses it again (and converts list-form merges character by
character). The export parses it once (:func:`ftwiz.core.export.vocab.read_tokenizer_json`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path
from typing import Any


def bpe_merges(tokenizer_json: dict[str, Any]) -> list[str]:
    """``model.merges`` as GGUF's "left right" strings. transformers >= 4.45 stores [left, right] lists so
    that pieces may hold spaces; GGUF (like gguf-py) writes such a space as U+0120."""
    merges = (tokenizer_json.get("model") or {}).get("merges") or []
    if not merges or isinstance(merges[0], str):
        return list(merges)
    joined = list(map(" ".join, merges))  # C-level loop; exact unless a piece holds a space
    if sum(map(str.count, joined, repeat(" "))) == len(joined):
        return joined
    shifted = chr(ord(" ") + 256)
    return [f"{left.replace(' ', shifted)} {right.replace(' ', shifted)}" for left, right in merges]


_JSON_SWAP = threading.Lock()


@contextlib.contextmanager
def parsed_once(path: Path, parsed: dict[str, Any] | None) -> Iterator[None]:
    """While gguf.SpecialVocab reads its files, hand it the tokenizer.json already parsed here instead of
    parsing the same 7 MB (Qwen) again: its module's ``json.load`` returns ``parsed`` for that one file. A file
    it cannot parse (tokenizer_config.json saved with a BOM or as Latin-1 by an editor) is an FtwizError naming
    it, not gguf-py's traceback."""
    import gguf.vocab

    class _Json:
        def __getattr__(self, name: str) -> Any:
            return getattr(json, name)

        @staticmethod
        def load(fp, *args, **kwargs):
            name = getattr(fp, "name", "")
            if parsed is not None and Path(name) == path:
                return parsed
            try:
                return json.load(fp, *args, **kwargs)
            except ValueError as exc:  # JSONDecodeError (a BOM too), UnicodeDecodeError
                from ftwiz.core.errors import FtwizError, Location

                raise FtwizError(f"not valid JSON: {getattr(exc, 'msg', exc)}", where=Location(
                    file=name, line=getattr(exc, "lineno", None)), fix="save it as UTF-8 without a BOM, or restore "
                    "the tokenizer files from the original model") from None

    with _JSON_SWAP:
        real = gguf.vocab.json
        gguf.vocab.json = _Json()
        try:
            yield
        finally:
            gguf.vocab.json = real
