"""A byte-level BPE tokenizer.json's merges packed for GGUF straight from the file's bytes.

Qwen2's tokenizer.json holds 151k merges as ``[left, right]`` pairs. ``json.loads`` builds 151k lists and 302k
strings for them (about half the parse), :func:`~ftwiz.core.export.vocab_json.bpe_merges` joins them and the
writer encodes them again, only for them to become one run of bytes in the GGUF: per merge a uint64 length,
then ``left right`` in UTF-8. Here the merges array is found in the raw bytes and the GGUF items are assembled
with numpy from the byte ranges of its strings; the rest of the file is parsed by ``json`` as before.

Strings with JSON escapes (Qwen2's merges have ~2,400 backslashes: ``\\\\`` and ``\\"``) are decoded one by one
by ``json``. Anything unexpected returns None and the caller parses the whole file as before: merges that are
not the last value of the file's last object, an element that is not a pair of strings (or a string, the
older ``"left right"`` form), a piece holding a space (gguf-py writes it as U+0120), bytes that are not UTF-8.
The result is byte-identical to packing ``bpe_merges(json.loads(file))`` (tests/unit/test_export_merges_raw.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_KEY = re.compile(rb'"merges"\s*:\s*\[')
_SPACE = b" \t\r\n"


@dataclass(frozen=True)
class PackedStrings:
    """A GGUF string array already laid out: each item's UTF-8 byte length, and all items' bytes joined."""

    lengths: np.ndarray  # uint64, one per item
    payload: np.ndarray  # uint8, the items' bytes back to back

    def __len__(self) -> int:
        return int(self.lengths.size)

    def items(self, byteorder: str = "<") -> bytes:
        """The array's items as GGUF stores them (no type or count prefix)."""
        from ftwiz.core.export.gguf_kv import interleave_lengths

        return interleave_lengths(self.lengths, self.payload, byteorder)


def _skip_space_back(raw: bytes, end: int) -> int:
    """Index of the last non-whitespace byte before ``end``."""
    end -= 1
    while end >= 0 and raw[end] in _SPACE:
        end -= 1
    return end


def _array_span(raw: bytes) -> tuple[int, int] | None:
    """(index of the merges array's '[', index of its ']'), when the array closes ``model`` and the file."""
    at, found = len(raw), None
    while found is None:  # the last key: inside the array a string is never followed by ':'
        at = raw.rfind(b'"merges"', 0, at)
        if at < 0:
            return None
        found = _KEY.match(raw, at)
    close_file = _skip_space_back(raw, len(raw))
    close_model = _skip_space_back(raw, close_file)
    close_array = _skip_space_back(raw, close_model)
    if raw[close_file:close_file + 1] != b"}" or raw[close_model:close_model + 1] != b"}" or close_array < found.end():
        return None
    return (found.end() - 1, close_array) if raw[close_array:close_array + 1] == b"]" else None


def _escaped_positions(b: np.ndarray) -> list[int]:
    """Positions of characters escaped by a backslash (a run of k backslashes escapes after its 1st, 3rd, ...)."""
    slashes = np.flatnonzero(b == 0x5C).tolist()
    escaped, i = [], 0
    while i < len(slashes):
        escaped.append(slashes[i] + 1)
        i += 2 if i + 1 < len(slashes) and slashes[i + 1] == slashes[i] + 1 else 1
    return escaped


def _strings(array: bytes) -> tuple[np.ndarray, np.ndarray, bytes, list[int], bool] | None:
    """(content starts, content ends, the structure outside strings without whitespace, indexes of the strings
    holding escapes, whether any string holds a raw space)."""
    b = np.frombuffer(array, dtype=np.uint8)
    quote = b == 0x22
    escaped = _escaped_positions(b)
    if escaped:
        quote[escaped] = False
    q = np.flatnonzero(quote)
    if q.size % 2:
        return None
    opens, closes = q[0::2], q[1::2]
    # from an opening quote up to (not including) its closing one: the parity of the quotes so far (a uint8
    # running sum wraps at 256, which keeps the parity; ~2x faster than logical_xor.accumulate)
    in_string = (np.cumsum(quote, dtype=np.uint8) & 1).view(bool)
    outside = b[~(in_string | quote)]
    structure = outside[(outside != 0x20) & (outside != 0x0A) & (outside != 0x0D) & (outside != 0x09)].tobytes()
    # a backslash outside a string is no JSON: it shows in the structure and fails the caller's check
    with_escape = sorted(set((np.searchsorted(opens, np.asarray(escaped, dtype=np.int64), side="right") - 1).tolist()))
    raw_space = bool(np.any(b[in_string & ~quote] == 0x20))
    return opens + 1, closes, structure, with_escape, raw_space


def pack_merges(array: bytes) -> PackedStrings | None:
    """The merges array's JSON text (``[[l, r], ...]`` or ``["l r", ...]``) as GGUF items, or None."""
    try:
        array.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = _strings(array)
    if found is None:
        return None
    starts, ends, structure, with_escape, raw_space = found
    n_strings = starts.size
    pairs = n_strings % 2 == 0 and n_strings > 0 and structure == b"[" + b",".join([b"[,]"] * (n_strings // 2)) + b"]"
    if not pairs and not (n_strings > 0 and structure == b"[" + b"," * (n_strings - 1) + b"]"):
        return None
    if pairs and raw_space:  # a piece with a space: gguf-py writes it as U+0120 (bpe_merges' slow path)
        return None
    lengths = (ends - starts).astype(np.int64)
    extra = [b" "]  # bytes appended after the array: a space for the pair joins, then decoded escaped strings
    offset = len(array) + 1
    try:  # the few strings with escapes, decoded by json in one call
        texts = json.loads(b"[" + b",".join(array[starts[i] - 1: ends[i] + 1] for i in with_escape) + b"]")
        decoded_all = [text.encode("utf-8") for text in texts]
    except (ValueError, UnicodeEncodeError):
        return None
    for i, decoded in zip(with_escape, decoded_all, strict=True):
        if pairs and b" " in decoded:
            return None
        starts[i], lengths[i] = offset, len(decoded)
        extra.append(decoded)
        offset += len(decoded)
    source = np.frombuffer(array + b"".join(extra), dtype=np.uint8)
    if pairs:
        seg_starts = np.empty(3 * (n_strings // 2), dtype=np.int64)
        seg_lengths = np.empty_like(seg_starts)
        seg_starts[0::3], seg_starts[1::3], seg_starts[2::3] = starts[0::2], len(array), starts[1::2]
        seg_lengths[0::3], seg_lengths[1::3], seg_lengths[2::3] = lengths[0::2], 1, lengths[1::2]
        item_lengths = lengths[0::2] + 1 + lengths[1::2]
    else:
        seg_starts, seg_lengths, item_lengths = starts.astype(np.int64), lengths, lengths
    out_starts = np.cumsum(seg_lengths) - seg_lengths
    index = np.repeat(seg_starts - out_starts, seg_lengths) + np.arange(int(seg_lengths.sum()), dtype=np.int64)
    return PackedStrings(item_lengths.astype(np.uint64), source[index])


def read_split(path: Path, wanted: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any],
                                                                             PackedStrings | None] | None:
    """``path`` (a tokenizer.json) parsed, with its merges packed apart when ``wanted(parsed)`` says so (then
    ``model.merges`` is left empty in the parsed dict), else parsed in place. None when the file is not laid out
    as expected (the caller then parses it whole; errors are reported there)."""
    raw = path.read_bytes()
    span = _array_span(raw)
    if span is None:
        return None
    start, end = span
    try:
        parsed = json.loads((raw[:start] + b"[]" + raw[end + 1:]).decode("utf-8"))
    except ValueError:  # not JSON, not UTF-8, a BOM: the whole-file parse says what is wrong
        return None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    if not isinstance(model, dict) or model.get("merges") != []:
        return None
    if wanted(parsed):
        packed = pack_merges(raw[start: end + 1])
        if packed is not None:
            return parsed, packed
    try:
        model["merges"] = json.loads(raw[start: end + 1].decode("utf-8"))
    except ValueError:
        return None
    return parsed, None
