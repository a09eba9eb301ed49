"""A byte-level BPE tokenizer.json's merges packed for GGUF straight from the file's bytes.

Qwen2's tokenizer.json holds 151k merges as ``[left, right]`` pairs. ``json.loads`` builds 151k lists and 302k
strings for them (about half the parse), :func:`~ftwiz.core.export.vocab_json.bpe_merges` joins them and the
writer encodes them again, only for them to become one run of bytes in the GGUF: per merge a uint64 length,
then ``left right`` in UTF-8. Here the merges array is found in the raw bytes and the GGUF items are assembled
with numpy from the byte ranges of its strings (:mod:`ftwiz.core.export.tokenizer_split` cuts the file).

Qwen2's merges hold ~2,400 escapes (``\\\\`` and ``\\"``), read as :mod:`ftwiz.core.export.json_scan` reads them.
Anything unexpected returns None and the caller lets ``json`` parse the array: merges that are not the last
value of the file's last object, an element that is not a pair of strings (or a string, the older
``"left right"`` form), a piece holding a space (gguf-py writes it as U+0120), an escape other than those,
bytes that are not UTF-8.
The result is byte-identical to packing ``bpe_merges(json.loads(file))`` (tests/unit/test_export_merges_raw.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from ftwiz.core.export.json_scan import scan_strings, skip_space_back

_KEY = re.compile(rb'"merges"\s*:\s*\[')


@dataclass(frozen=True)
class PackedStrings:
    """A GGUF string array already laid out: each item's UTF-8 byte length, and all items' bytes joined."""

    lengths: np.ndarray  # uint64, one per item
    payload: np.ndarray  # uint8, the items' bytes back to back

    def __len__(self) -> int:
        return int(self.lengths.size)

    def items(self, byteorder: str = "<") -> bytes:
        """The array's items as GGUF stores them (no type or count prefix)."""
        return interleave_lengths(self.lengths, self.payload, byteorder)


def interleave_lengths(lengths: np.ndarray, payload: np.ndarray, byteorder: str = "<") -> bytes:
    """GGUF string items from their byte ``lengths`` (uint64) and their bytes joined (``payload``, uint8)."""
    n = lengths.size
    out = np.empty(8 * n + payload.size, dtype=np.uint8)
    runs = np.empty(2 * n, dtype=np.int64)  # per string: its 8 length bytes, then its text
    runs[0::2], runs[1::2] = 8, lengths
    is_length = np.repeat(np.arange(2 * n) % 2 == 0, runs)
    out[is_length] = lengths.astype(f"{byteorder}u8").view(np.uint8)
    out[~is_length] = payload
    return out.tobytes()


def array_span(raw: bytes) -> tuple[int, int, int] | None:
    """(index of the merges array's '[', index of its ']', index of its key), when the array closes ``model``
    and the file."""
    at, found = len(raw), None
    while found is None:  # the last key: inside the array a string is never followed by ':'
        at = raw.rfind(b'"merges"', 0, at)
        if at < 0:
            return None
        found = _KEY.match(raw, at)
    close_file = skip_space_back(raw, len(raw))
    close_model = skip_space_back(raw, close_file)
    close_array = skip_space_back(raw, close_model)
    if raw[close_file:close_file + 1] != b"}" or raw[close_model:close_model + 1] != b"}" or close_array < found.end():
        return None
    return (found.end() - 1, close_array, at) if raw[close_array:close_array + 1] == b"]" else None


def pack_merges(array: bytes) -> PackedStrings | None:
    """The merges array's JSON text (``[[l, r], ...]`` or ``["l r", ...]``) as GGUF items, or None."""
    strings = scan_strings(array)
    if strings is None:
        return None
    n = strings.opens.size
    shape = strings.shape()
    pairs = n % 2 == 0 and shape == b"[" + b",".join([b'[","]'] * (n // 2)) + b"]"
    if not pairs and shape != b"[" + b",".join([b'"'] * n) + b"]":
        return None
    texts = strings.texts()
    if texts is None:
        return None
    content, lengths = texts
    if not pairs:
        return PackedStrings(lengths.astype(np.uint64), content)
    if np.any(content == 0x20):  # a piece with a space: gguf-py writes it as U+0120 (bpe_merges' slow path)
        return None
    left = lengths[0::2]
    item_lengths = left + 1 + lengths[1::2]
    is_space = np.zeros(content.size + item_lengths.size, dtype=bool)
    is_space[np.cumsum(item_lengths) - item_lengths + left] = True  # "left right": one space per merge
    payload = np.empty(is_space.size, dtype=np.uint8)
    payload[is_space] = 0x20
    payload[~is_space] = content
    return PackedStrings(item_lengths.astype(np.uint64), payload)
