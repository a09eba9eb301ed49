"""The parts of a parsed tokenizer.json the export reads, checked for the types the tokenizers library writes.

A hand-edited file (``"added_tokens": null``, an added token without ``content`` or with a numeric one, a
``model`` that is not an object, a lone surrogate escape such as ``"\\ud800"`` in a token) ended in a Python
traceback deep in the vocabulary code. The tokenizers library refuses such a file too, so nothing was trained
with it; the export says which field is wrong and where the right file comes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

_FIX = "restore tokenizer.json from the base model (AutoTokenizer.from_pretrained(...).save_pretrained writes it)"


def _refuse(path: Path, field: str | None, what: str) -> FtwizError:
    return FtwizError(f"tokenizer.json {what}", where=Location(file=path, field=field), fix=_FIX)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checked_tokenizer_json(parsed: Any, path: Path) -> dict[str, Any]:
    """``parsed`` (tokenizer.json's content) when its ``model`` and ``added_tokens`` are what the export reads;
    FtwizError naming ``path`` and the field otherwise. The vocab's texts are checked here only when they were
    parsed by json (the raw reader checks its own)."""
    if not isinstance(parsed, dict):
        raise _refuse(path, None, "is not a JSON object")
    if not isinstance(parsed.get("model"), dict):
        raise _refuse(path, "model", "has no tokenizer model object ('model' is missing or not an object)")
    added = parsed.get("added_tokens", [])
    if not isinstance(added, list):
        raise _refuse(path, "added_tokens", "has added_tokens that are not a list")
    for i, item in enumerate(added):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str) or type(item.get("id")) is not int:
            raise _refuse(path, f"added_tokens[{i}]", "has an added token without a text 'content' and a "
                                                      "whole-number 'id'")
        if not _utf8(item["content"]):
            raise _refuse(path, f"added_tokens[{i}].content", "holds a lone surrogate escape (\\ud800-\\udfff), "
                                                              "which is no text")
    vocab = parsed["model"].get("vocab")
    if isinstance(vocab, dict) and vocab and not _utf8("".join(vocab)):  # one encode of all the texts
        bad = next(text for text in vocab if not _utf8(text))
        raise _refuse(path, "model.vocab", f"holds a token with a lone surrogate escape ({bad!r}), which is no text")
    return parsed
