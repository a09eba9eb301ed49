"""A byte-level BPE tokenizer.json's ``model.vocab`` packed for GGUF straight from the file's bytes.

Qwen2's vocab object holds 151k ``"text": id`` entries. ``json.loads`` turns them into 151k Python strings and
a dict, which the export then walks to build the token list and encodes back to UTF-8, only for the tokens to
become one run of bytes in the GGUF (per token a uint64 length, then its UTF-8 text). Here the object is read
with numpy from the raw bytes: its texts joined as they stand in the file, their byte lengths, and the ids
parsed from the digits; the added tokens, padding rows and token types are then laid over them with the
semantics of :func:`ftwiz.core.export.vocab._bpe_vocab` (a dict built from the vocab, updated by
``added_tokens``).

Only what can be read exactly is handled; anything else returns None and the caller parses the object with
``json`` as before (so its errors are reported there): an object that is not ``{"text": <int>, ...}``, escapes
other than ``\\\\``, ``\\"`` and ``\\/``, raw control characters, text that is not UTF-8, two entries with one id
or one text, an id at or beyond the model's rows, an added token that moves or displaces a vocab entry.
Byte-identical to the token and type arrays the json route writes (tests/unit/test_export_vocab_raw.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from ftwiz.core.export.json_scan import scan_strings, skip_space_back
from ftwiz.core.export.merges_raw import PackedStrings

_VOCAB_KEY = re.compile(rb'"vocab"\s*:\s*\{')
_K_TAIL, _K_LENGTH, _MASK = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, (1 << 64) - 1  # odd mixing constants
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [_MASK], dtype=np.uint64)  # k low bytes set
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5  # gguf.TokenType values, as in vocab.py


@dataclass(frozen=True)
class RawVocab:
    """The vocab object's entries in file order: texts (UTF-8) joined, each text's byte length and its id;
    ``source`` is the object's JSON text, for the json route when the entries cannot be laid out exactly."""

    source: bytes
    content: np.ndarray  # uint8, the texts back to back
    lengths: np.ndarray  # int64, one per entry
    ids: np.ndarray  # int64, one per entry


def vocab_span(raw: bytes, merges_key_at: int) -> tuple[int, int] | None:
    """(index of '{', index of its '}') of ``"vocab": {...}`` when it is the member just before the merges key
    at ``merges_key_at``; None otherwise. A wrong guess cannot pass :func:`scan_vocab`'s shape check."""
    comma = skip_space_back(raw, merges_key_at)
    close = skip_space_back(raw, comma)
    if raw[comma:comma + 1] != b"," or raw[close:close + 1] != b"}":
        return None
    at = 0
    while True:  # from the front: the vocab object is long, what precedes it short; a text `vocab` inside it is
        # followed by ': <digits>', never by ': {'
        at = raw.find(b'"vocab"', at, close)
        if at < 0:
            return None
        found = _VOCAB_KEY.match(raw, at)
        if found is not None:
            return found.end() - 1, close
        at += 1


def _parse_ids(tight_text: bytes) -> np.ndarray | None:
    """The ids of the vocab object's shape (:meth:`Strings.shape`) when it is strictly ``{"": <int>, ...}``
    as JSON allows (no leading zeros, no number split by whitespace: checked by the caller), else None. Ids
    too large for int64 read as its maximum, which no model has rows for."""
    n = tight_text.count(b'"')
    if n == 0 or tight_text.translate(None, b"0123456789") != b"{" + b'":,' * (n - 1) + b'":}':
        return None
    tight = np.frombuffer(tight_text, dtype=np.uint8)
    digit = (tight - 0x30) <= 9  # uint8 arithmetic wraps everything below '0' above 9
    colon = tight == 0x3A
    # n numbers, each right after a ':' (so one per member), none with a leading 0
    if (np.count_nonzero(digit[1:] & ~digit[:-1]) != n or np.count_nonzero(colon[:-1] & digit[1:]) != n
            or np.any(colon[:-2] & (tight[1:-1] == 0x30) & digit[2:])):
        return None
    return np.fromstring(tight_text.translate(None, b'{}":'), dtype=np.int64, sep=",")


def scan_vocab(source: bytes) -> RawVocab | None:
    """``source`` (the vocab object's JSON text, '{' to '}') read into a :class:`RawVocab`, or None."""
    strings = scan_strings(source)
    if strings is None:
        return None
    ids = _parse_ids(strings.shape())
    if ids is None or ids.size != strings.opens.size:
        return None
    digit = (strings.b - 0x30) <= 9
    if np.count_nonzero(digit[1:] & ~digit[:-1] & ~strings.in_string[1:]) != ids.size:  # json rejects "1 2"
        return None
    texts = strings.texts()
    return None if texts is None else RawVocab(source, texts[0], texts[1], ids)


def _fingerprint(text: bytes) -> int:
    """:meth:`_TextIndex.fingerprints` of one text."""
    head = int.from_bytes(text[:8].ljust(8, b"\0"), "little")
    tail = int.from_bytes(text[-8:].rjust(8, b"\0"), "little")
    return head ^ (tail * _K_TAIL & _MASK) ^ (len(text) * _K_LENGTH & _MASK)


class _TextIndex:
    """Exact lookup of a text among the vocab's entries. A fingerprint (first and last 8 bytes, length) only
    narrows the search: equal fingerprints are compared byte for byte."""

    def __init__(self, vocab: RawVocab, offsets: np.ndarray) -> None:
        self.vocab, self.offsets = vocab, offsets
        lengths = vocab.lengths
        padded = np.concatenate([np.zeros(8, np.uint8), vocab.content, np.zeros(8, np.uint8)])
        windows = np.lib.stride_tricks.as_strided(padded, shape=(padded.size - 7, 8), strides=(1, 1))
        short = np.minimum(lengths, 8)
        head = windows[offsets + 8].copy().view("<u8").ravel() & _LOW_BYTES[short]  # the first <= 8 bytes
        tail = windows[offsets + lengths].copy().view("<u8").ravel() & ~_LOW_BYTES[8 - short]  # the last <= 8
        prints = head ^ (tail * np.uint64(_K_TAIL)) ^ (lengths.astype(np.uint64) * np.uint64(_K_LENGTH))
        self.order = np.argsort(prints, kind="stable")
        self.sorted = prints[self.order]

    def _text(self, entry: int) -> bytes:
        start = int(self.offsets[entry])
        return self.vocab.content[start:start + int(self.vocab.lengths[entry])].tobytes()

    def has_duplicates(self) -> bool:
        """Whether two entries hold one text (json keeps the last of them)."""
        same = np.flatnonzero(self.sorted[1:] == self.sorted[:-1])
        return any(self._text(int(self.order[i])) == self._text(int(self.order[i + 1])) for i in same.tolist())

    def find(self, text: bytes) -> int | None:
        """The entry (file position) holding ``text``, or None."""
        target = np.uint64(_fingerprint(text))
        at = int(np.searchsorted(self.sorted, target))
        while at < self.sorted.size and self.sorted[at] == target:
            if self._text(int(self.order[at])) == text:
                return int(self.order[at])
            at += 1
        return None


def assemble(vocab: RawVocab, added_tokens: Any, n_vocab: int,
             names: tuple[str, ...]) -> tuple[PackedStrings, np.ndarray, dict[str, int]] | None:
    """(tokens as GGUF items, token types int32, ids of those ``names`` that are tokens) for ``n_vocab`` rows,
    or None for the json route. Rows without a token are ``[PAD<id>]`` (UNUSED); added tokens are CONTROL when
    special, else USER_DEFINED."""
    ids = vocab.ids
    if ids.max() >= n_vocab or np.bincount(ids, minlength=n_vocab).max() > 1:
        return None
    offsets = np.cumsum(vocab.lengths) - vocab.lengths
    index = _TextIndex(vocab, offsets)
    if index.has_duplicates():
        return None
    starts = np.full(n_vocab, -1, dtype=np.int64)
    lengths = np.zeros(n_vocab, dtype=np.int64)
    starts[ids], lengths[ids] = offsets, vocab.lengths
    types = np.full(n_vocab, NORMAL, dtype=np.int32)
    extra: list[bytes] = []
    extra_at = vocab.content.size
    named: dict[bytes, int] = {}
    special, normal = [], []
    for item in added_tokens if isinstance(added_tokens, list) else []:
        content, i = (item.get("content"), item.get("id")) if isinstance(item, dict) else (None, None)
        if not isinstance(content, str) or type(i) is not int or not 0 <= i < n_vocab:
            return None
        try:
            text = content.encode("utf-8")
        except UnicodeEncodeError:
            return None
        entry = index.find(text)
        if entry is not None:
            if int(ids[entry]) != i:  # json: the added id replaces the entry's, leaving its old row empty
                return None
        elif starts[i] != -1 or text in named:  # a row or a text taken twice: json's last-wins order decides
            return None
        else:
            starts[i], lengths[i] = extra_at, len(text)
            extra.append(text)
            extra_at += len(text)
        named[text] = i
        (special if item.get("special") else normal).append(i)
    types[normal] = USER_DEFINED
    types[special] = CONTROL
    for i in np.flatnonzero(starts == -1).tolist():  # embedding rows beyond the tokenizer (padding for speed)
        pad = b"[PAD%d]" % i
        starts[i], lengths[i] = extra_at, len(pad)
        extra.append(pad)
        extra_at += len(pad)
        types[i] = UNUSED
    source = np.concatenate([vocab.content, np.frombuffer(b"".join(extra), dtype=np.uint8)])
    out_starts = np.cumsum(lengths) - lengths
    gather = np.repeat(starts - out_starts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
    name_ids = {}
    for name in names:
        text = name.encode("utf-8")
        entry = index.find(text)
        i = named.get(text, int(ids[entry]) if entry is not None else None)
        if i is not None:
            name_ids[name] = i
    return PackedStrings(lengths.astype(np.uint64), source[gather]), types, name_ids
