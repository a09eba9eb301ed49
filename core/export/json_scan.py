"""JSON strings located in raw bytes with numpy, for the big arrays of a tokenizer.json.

Used by :mod:`ftwiz.core.export.vocab_raw` and :mod:`ftwiz.core.export.merges_raw`, which read ``model.vocab``
and ``model.merges`` without building a Python object per entry. The escapes ``\\\\``, ``\\"`` and ``\\/`` are read in place (the byte after the backslash is the text's); strings
holding any other escape (``\\n``, ``\\u00e9``, ...) are decoded by ``json`` in one call and spliced in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

_SPACE = b" \t\r\n"
_SIMPLE_ESCAPES = np.frombuffer(b'"\\/', dtype=np.uint8)  # the escaped byte is the text's byte


def skip_space_back(raw: bytes, end: int) -> int:
    """Index of the last non-whitespace byte before ``end``."""
    end -= 1
    while end >= 0 and raw[end] in _SPACE:
        end -= 1
    return end


def escaped_positions(b: np.ndarray) -> np.ndarray:
    """Positions of characters escaped by a backslash (a run of k backslashes escapes after its 1st, 3rd, ...),
    int64, ascending."""
    slashes = np.flatnonzero(b == 0x5C)
    if not slashes.size:
        return slashes
    run_start = np.flatnonzero(np.diff(slashes, prepend=-2) != 1)  # first backslash of each run
    rank = np.arange(slashes.size) - np.repeat(run_start, np.diff(run_start, append=slashes.size))
    return slashes[rank % 2 == 0] + 1


@dataclass(frozen=True)
class Strings:
    """The strings of a JSON text ``raw`` (``b``: its bytes as uint8): where each opens and closes (indexes of its quotes), which
    bytes lie inside one (an opening quote up to, not including, its closing one) and the escaped bytes."""

    raw: bytes
    b: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    in_string: np.ndarray
    escaped: np.ndarray

    def shape(self) -> bytes:
        """The text outside strings without whitespace, each string reduced to its opening quote: e.g.
        ``{":1,":2}`` for an object of two members."""
        outside = ~self.in_string
        outside[self.closes] = False
        outside[self.opens] = True
        return self.b[outside].tobytes().translate(None, _SPACE)

    def texts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(the strings' texts back to back as UTF-8, uint8; each one's byte length, int64), or None when one
        holds a raw control character or a lone surrogate escape (json reports those)."""
        b, opens, closes = self.b, self.opens, self.closes
        text = self.in_string.copy()
        text[opens] = False
        backslashes = self.escaped - 1  # each escape's backslash is no text
        text[backslashes] = False
        lengths = (closes - opens - 1).astype(np.int64)
        if not backslashes.size:
            content = b[text]
            return None if np.any(content < 0x20) else (content, lengths)
        owner = np.searchsorted(opens, backslashes, side="right") - 1
        lengths -= np.bincount(owner, minlength=opens.size)
        decode = _distinct_sorted(owner[~np.isin(b[self.escaped], _SIMPLE_ESCAPES)])  # \n, \u00e9, ...: json's job
        if decode.size:
            bounds = np.stack([opens[decode], closes[decode]], axis=1).ravel()
            text &= ~np.repeat(np.arange(bounds.size + 1) % 2 == 1, np.diff(bounds, prepend=0, append=b.size))
        content = b[text]
        if np.any(content < 0x20):
            return None
        if not decode.size:
            return content, lengths
        try:
            decoded = [t.encode("utf-8") for t in json.loads(
                b"[" + b",".join(self.raw[i:j + 1] for i, j in zip(opens[decode].tolist(), closes[decode].tolist(),
                                                                    strict=True))
                + b"]")]
        except (ValueError, UnicodeEncodeError):
            return None
        lengths[decode] = [len(t) for t in decoded]
        flags = np.zeros(opens.size, dtype=bool)
        flags[decode] = True
        spliced = np.repeat(flags, lengths)
        out = np.empty(spliced.size, dtype=np.uint8)
        out[spliced] = np.frombuffer(b"".join(decoded), dtype=np.uint8)
        out[~spliced] = content
        return out, lengths


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of an already sorted array, without it: ``np.unique`` imports ``numpy.ma`` on first use
    (0.02-0.04 s of a one-second export)."""
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def scan_strings(text: bytes) -> Strings | None:
    """The strings of ``text`` (JSON, UTF-8), or None: not UTF-8, an unpaired quote, no strings."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    b = np.frombuffer(text, dtype=np.uint8)
    quote = b == 0x22
    escaped = escaped_positions(b)
    if escaped.size and escaped[-1] >= b.size:  # a backslash ends the text: no JSON
        return None
    quote[escaped] = False
    marks = np.flatnonzero(quote)
    if marks.size % 2 or marks.size == 0:
        return None
    # inside from each opening quote up to its closing one: runs laid out by np.repeat (faster than a
    # running parity of the quotes)
    in_string = np.repeat(np.arange(marks.size + 1) % 2 == 1, np.diff(marks, prepend=0, append=b.size))
    return Strings(text, b, marks[0::2], marks[1::2], in_string, escaped)
