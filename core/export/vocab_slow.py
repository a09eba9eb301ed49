"""A byte-level BPE given only as vocab.json + merges.txt (no tokenizer.json), built as transformers builds it.

Older GPT-2/Qwen-style repos ship only the "slow" tokenizer files. ``AutoTokenizer.from_pretrained`` builds the
fast tokenizer from them and tokenizes with it; its JSON (``backend_tokenizer.to_str()``, byte for byte what
``save_pretrained`` writes as tokenizer.json) is what the export then reads, so the GGUF's tokens, merges,
types, special ids and pre-tokenizer are those transformers tokenizes with. llama.cpp's convert_hf_to_gguf.py
goes through AutoTokenizer for such folders too.

Nothing is written into the model folder: gguf-py's ``SpecialVocab`` maps the special tokens named in
tokenizer_config.json to ids through a tokenizer.json it opens itself, so it is shown a temporary folder
(:func:`special_vocab_dir`) holding the built file beside copies of the folder's small config files.

Cost: only these folders import transformers (~4 s, then ~0.5 s to build Qwen2's 151k-token tokenizer); a
folder with a tokenizer.json never reaches this module's transformers import (export start-up is
benchmarked). The vocabulary cache (vocab_cache.py) is keyed by tokenizer.json's bytes: here those exist only
after transformers has built the tokenizer, the dominant cost, so a hit would save only the ~0.4 s of packing;
such folders are exported uncached (``cache_key`` finds no tokenizer.json and returns None).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

# What gguf-py's SpecialVocab reads besides tokenizer.json (special tokens, add_*_token, chat template, ids).
_SPECIAL_FILES = ("tokenizer_config.json", "config.json", "chat_template.jinja", "chat_template.json")
_FIX = ("restore vocab.json and merges.txt from the base model, or save the tokenizer with "
        "AutoTokenizer.save_pretrained so the folder has a tokenizer.json")


def has_slow_bpe_files(model_dir: Path) -> bool:
    """True when the folder's tokenizer is vocab.json (+ merges.txt): no tokenizer.json, no tokenizer.model
    (which keeps winning, as before this module existed), and a vocab.json."""
    model_dir = Path(model_dir)
    return (not (model_dir / "tokenizer.json").is_file() and not (model_dir / "tokenizer.model").is_file()
            and (model_dir / "vocab.json").is_file())


def slow_bpe_tokenizer_json(model_dir: Path) -> dict[str, Any]:
    """The tokenizer.json transformers builds from ``model_dir``'s vocab.json + merges.txt, parsed.

    Raises FtwizError naming merges.txt when it is missing, vocab.json when transformers cannot load the files
    (or they need remote code) or when they do not make a byte-level BPE."""
    from ftwiz.core.export.vocab import is_byte_level_bpe

    model_dir = Path(model_dir)
    if not (model_dir / "merges.txt").is_file():
        raise FtwizError("vocab.json has no merges.txt beside it (a byte-level BPE tokenizer needs both)",
                         where=Location(file=model_dir / "merges.txt"),
                         fix="copy merges.txt of the base model into this folder, or its tokenizer.json")
    _require_valid_json(model_dir)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
        built = json.loads(tokenizer.backend_tokenizer.to_str())
    except Exception as exc:  # noqa: BLE001 - any loader failure: transformers cannot tokenize with it either
        raise FtwizError(f"vocab.json + merges.txt could not be loaded as a fast tokenizer: {exc}",
                         where=Location(file=model_dir / "vocab.json"), fix=_FIX) from None
    if not is_byte_level_bpe(built):
        raise FtwizError("vocab.json + merges.txt do not make a byte-level BPE tokenizer",
                         where=Location(file=model_dir / "vocab.json"), fix=_FIX)
    return built


# JSON files transformers reads to build the tokenizer: a broken one must be named, not blamed on vocab.json
_TOKENIZER_JSON = ("vocab.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def _require_valid_json(model_dir: Path) -> None:
    """Raise FtwizError naming the first of :data:`_TOKENIZER_JSON` that is not valid JSON, with its line."""
    for name in _TOKENIZER_JSON:
        path = model_dir / name
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError (saved as Latin-1 by an editor)
            raise FtwizError(f"not valid JSON: {getattr(exc, 'msg', exc)}",
                             where=Location(file=path, line=getattr(exc, "lineno", None)),
                             fix="save it as UTF-8 JSON, or restore it from the base model") from None


@contextlib.contextmanager
def special_vocab_dir(model_dir: Path, tokenizer_json: dict[str, Any] | None) -> Iterator[Path]:
    """The folder gguf-py's SpecialVocab should read: ``model_dir`` itself, or, when ``tokenizer_json`` was
    built in memory (the folder has none), a temporary folder holding it (without vocab and merges, which
    SpecialVocab does not need here) and copies of the folder's :data:`_SPECIAL_FILES`; removed on exit."""
    model_dir = Path(model_dir)
    if tokenizer_json is None or (model_dir / "tokenizer.json").is_file():
        yield model_dir
        return
    with tempfile.TemporaryDirectory(prefix="ftwiz-tokenizer-") as tmp:
        folder = Path(tmp)
        small = {**tokenizer_json, "model": {**(tokenizer_json.get("model") or {}), "vocab": {}, "merges": []}}
        (folder / "tokenizer.json").write_text(json.dumps(small), encoding="utf-8")
        for name in _SPECIAL_FILES:
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, folder / name)
        if (model_dir / "additional_chat_templates").is_dir():
            shutil.copytree(model_dir / "additional_chat_templates", folder / "additional_chat_templates")
        yield folder
