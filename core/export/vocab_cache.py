"""A byte-level BPE vocabulary's GGUF arrays, cached per tokenizer.json content.

Parsing a Qwen2 tokenizer.json (11 MB: 151k tokens, 151k merges) and packing its arrays costs ~0.4 CPU-s per
export, a fifth of a whole ``ftwiz export --quant F16`` of a 0.5B model. The same tokenizer is exported again
and again (one GGUF per quant type; every run trained from the same base), so its arrays as GGUF stores them
are kept in ``cache_dir()/gguf-vocab/``, keyed by the SHA-256 of tokenizer.json's bytes (~10 ms), the model's
embedding rows and a fingerprint of the code deriving them (this module, vocab.py, the raw readers, gguf_kv.py
and gguf-py's writer and vocab modules): editing any of them misses the cache instead of reusing an old answer.

Only what depends on tokenizer.json and the row count alone is cached: the token, type and merge arrays, the
pre-tokenizer name, the ids of end-of-turn candidates, and tokenizer.json without its vocab and merges (for
gguf-py's SpecialVocab and the general.name rule). generation_config.json, tokenizer_config.json and the chat
template are read on every export. A missing, truncated or unreadable cache file is a miss; a cache that
cannot be written is skipped (logged at debug level): the export never fails because of it.
SentencePiece tokenizers are not cached (their arrays come from tokenizer.model through gguf-py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftwiz.core.errors import FtwizError
from ftwiz.core.export.vocab import END_OF_TURN, VocabData, detect_pre_tokenizer, load_vocab

if TYPE_CHECKING:
    from ftwiz.core.export.tokenizer_split import SplitTokenizer

log = logging.getLogger(__name__)

MAGIC = b"FTWIZ-GGUF-VOCAB-1\n"
KEEP = 8  # cache files kept (newest first); one Qwen2 vocabulary is ~5 MB
# gguf.GGUFValueType's STRING and INT32 (the GGUF specification's numbers): a cold read needs no more of
# gguf-py than the writer does later (tests/unit/test_export_vocab_raw.py compares them with gguf's)
GGUF_STRING, GGUF_INT32 = 8, 5


@dataclass(frozen=True)
class RawArray:
    """A GGUF array's items already in the file's little-endian layout (no type or count prefix)."""

    item_type: int  # gguf.GGUFValueType of every item
    count: int
    items: bytes

    def __len__(self) -> int:
        return self.count


@dataclass
class CachedVocab:
    """What ``write_vocab`` needs from tokenizer.json: the vocabulary (arrays as :class:`RawArray`) and the
    parsed file without ``model.vocab`` / ``model.merges``."""

    vocab: VocabData
    tokenizer_json: dict[str, Any]


def _fingerprint() -> bytes:
    """SHA-256 of the source files whose code decides the cached bytes; empty when one cannot be read. Found
    without importing them (gguf-py's writer loads only when the export writes)."""
    import importlib.util

    digest = hashlib.sha256()
    modules = ("vocab", "merges_raw", "vocab_raw", "json_scan", "tokenizer_split", "gguf_kv", "vocab_cache")
    names = [f"ftwiz.core.export.{m}" for m in modules] + ["gguf.gguf_writer", "gguf.vocab"]
    try:
        for name in names:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                return b""
            digest.update(Path(spec.origin).read_bytes())
    except (OSError, ImportError, ValueError):
        return b""
    return digest.digest()


def cache_key(model_dir: Path, n_vocab: int) -> str | None:
    """Hex key for ``model_dir``'s tokenizer.json at ``n_vocab`` embedding rows, or None (no tokenizer.json,
    code not readable)."""
    path = Path(model_dir) / "tokenizer.json"
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    code = _fingerprint()
    if not code:
        return None
    digest = hashlib.sha256(raw)
    digest.update(code)
    digest.update(f"|{n_vocab}".encode())
    return digest.hexdigest()


def cached_file(key: str) -> Path:
    """Where the cache entry ``key`` is stored."""
    return _folder() / f"{key}.bin"


def _folder() -> Path:
    from ftwiz.core.paths import cache_dir

    return cache_dir() / "gguf-vocab"


def lookup(key: str | None) -> CachedVocab | None:
    """The cached vocabulary for ``key``, or None (a miss, or a file that does not read back whole)."""
    if key is None:
        return None
    try:
        path = _folder() / f"{key}.bin"
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            meta = json.loads(f.readline())
            sections = [f.read(n) for n in meta["sizes"]]
            if [len(s) for s in sections] != meta["sizes"] or f.read(1):
                return None
        (t_type, t_count), (y_type, y_count), (m_type, m_count) = meta["arrays"]
        tokens, types, merges = (RawArray(t_type, t_count, sections[0]), RawArray(y_type, y_count, sections[1]),
                                 RawArray(m_type, m_count, sections[2]))
        vocab = VocabData(model="gpt2", pre=meta["pre"], tokens=tokens, types=types, merges=merges)  # type: ignore[arg-type]
        vocab.named_ids = {name: int(i) for name, i in meta["named_ids"].items()}
        os.utime(path)  # recently used: kept when older files are pruned
        return CachedVocab(vocab, meta["tokenizer_json"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, FtwizError):  # RuntimeError: no home folder
        return None  # FtwizError: FTWIZ_CACHE_DIR names a file (core/paths.py); exported without the cache


def build(key: str | None, model_dir: Path, n_vocab: int, split: SplitTokenizer) -> CachedVocab | None:
    """The vocabulary of a byte-level BPE tokenizer.json as :class:`RawArray` items (stored under ``key``), or
    None for other tokenizers and for files ``write_vocab`` must report on (no merges; then ``split.parsed``
    holds the whole file again)."""
    import numpy as np
    from ftwiz.core.export.vocab import tokenizer_kind
    from ftwiz.core.export.vocab_json import bpe_merges
    from ftwiz.core.export.vocab_raw import assemble

    tokenizer_json = split.parsed
    if tokenizer_json is None or tokenizer_kind(model_dir, tokenizer_json) != "bpe":
        return None
    merges = split.merges if split.merges is not None else bpe_merges(tokenizer_json)
    if not len(merges):
        split.restore_vocab()
        return None
    packed = None if split.vocab is None else assemble(split.vocab, tokenizer_json.get("added_tokens"), n_vocab,
                                                       END_OF_TURN)
    if packed is not None:  # straight from the file's bytes (vocab_raw.py)
        token_items, type_array, named_ids = packed
        tokens = RawArray(GGUF_STRING, len(token_items), token_items.items())
        types = RawArray(GGUF_INT32, type_array.size, type_array.astype("<i4").tobytes())
        pre = detect_pre_tokenizer(tokenizer_json)
    else:  # parsed by json (layouts vocab_raw.py does not read, and its errors)
        from ftwiz.core.export.gguf_kv import pack_strings

        split.restore_vocab()
        data = load_vocab(model_dir, n_vocab, tokenizer_json)
        present = set(END_OF_TURN).intersection(data.tokens)
        named_ids = {name: data.tokens.index(name) for name in END_OF_TURN if name in present}
        tokens = RawArray(GGUF_STRING, len(data.tokens), pack_strings(data.tokens))
        types = RawArray(GGUF_INT32, len(data.types), np.asarray(data.types, dtype="<i4").tobytes())
        pre = data.pre
    if hasattr(merges, "items"):  # packed from the bytes (merges_raw.py)
        merged = RawArray(GGUF_STRING, len(merges), merges.items())
    else:
        from ftwiz.core.export.gguf_kv import pack_strings

        merged = RawArray(GGUF_STRING, len(merges), pack_strings(merges))
    small = {**tokenizer_json, "model": {**tokenizer_json["model"], "vocab": {}, "merges": []}}
    cached = CachedVocab(VocabData(model="gpt2", pre=pre, tokens=tokens, types=types,  # type: ignore[arg-type]
                                   merges=merged), small)
    cached.vocab.named_ids = named_ids
    if key is not None:
        _store(key, cached)
    return cached


def _store(key: str, cached: CachedVocab) -> None:
    """Write the cache file under a temporary name and rename it (readers see all of it or nothing). Not
    through core/atomic.py: this is no user output, and must not be listed as one after a Ctrl-C."""
    arrays = [cached.vocab.tokens, cached.vocab.types, cached.vocab.merges]
    meta = {"pre": cached.vocab.pre, "named_ids": cached.vocab.named_ids, "tokenizer_json": cached.tokenizer_json,
            "arrays": [[a.item_type, a.count] for a in arrays], "sizes": [len(a.items) for a in arrays]}
    tmp = None
    try:
        folder = _folder()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            f.write(json.dumps(meta, ensure_ascii=True).encode() + b"\n")
            for a in arrays:
                f.write(a.items)
        os.replace(tmp, folder / f"{key}.bin")
        tmp = None
        _prune(folder)
    except (OSError, RuntimeError, FtwizError) as exc:  # read-only or full disk, no home folder, a file for the
        # cache folder: exported without it
        log.debug("vocabulary cache not written: %s", exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Keep the :data:`KEEP` most recently used cache files; drop temporary files a killed export left."""
    import time

    files = sorted(folder.glob("*.bin"), key=lambda p: p.stat().st_mtime, reverse=True)
    stale = [p for p in folder.glob(".*.tmp") if p.stat().st_mtime < time.time() - 3600]
    for old in files[KEEP:] + stale:
        old.unlink(missing_ok=True)


def read_vocab(model_dir: Path, n_vocab: int) -> tuple[dict[str, Any] | None, Any, VocabData | None]:
    """(tokenizer.json parsed, a BPE's merges packed from its bytes or None, the vocabulary or None) for
    ``write_vocab``: from the cache when it holds this tokenizer.json, else parsed (and cached when it is a
    byte-level BPE). With a vocabulary, the parsed file has no ``model.vocab`` / ``model.merges``."""
    from ftwiz.core.export.tokenizer_split import read_tokenizer_json_split
    key = cache_key(model_dir, n_vocab)
    hit = lookup(key)
    if hit is not None:
        return hit.tokenizer_json, None, hit.vocab
    split = read_tokenizer_json_split(model_dir)
    built = build(key, model_dir, n_vocab, split)
    return (split.parsed, split.merges, None) if built is None else (built.tokenizer_json, None, built.vocab)
