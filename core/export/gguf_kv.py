"""GGUF metadata arrays packed in bulk: the same bytes as gguf-py's writer, without a Python call per value.

A vocabulary is ~150k tokens, ~150k types, ~150k scores and ~150k merges. ``gguf.GGUFWriter`` packs every
array item with its own ``struct.pack`` call and bytearray append (about 2 s for a Qwen2 vocabulary on this
machine's cores), which cost more than converting the weights. Here an array is packed at once with numpy:

- numbers: one ``numpy.asarray(values, dtype)`` in the file's byte order;
- strings: GGUF's layout is, per string, a uint64 byte length followed by the UTF-8 bytes. The lengths and
  the concatenated bytes are built once, then scattered into one buffer: a boolean mask marks the 8 length
  bytes in front of each string, the lengths fill the marked bytes and the text fills the rest.

:class:`BulkGGUFWriter` is ``gguf.GGUFWriter`` with only its array packing replaced; every other value (and
the array's own type/count prefix) still goes through gguf-py's code, so a gguf release that changes the
layout changes both. ``tests/unit/test_export_gguf_kv.py`` compares whole files byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gguf
import numpy as np
from ftwiz.core.export.merges_raw import interleave_lengths

_V = gguf.GGUFValueType
# GGUF value type -> numpy dtype character (byte order added per file)
_NUMERIC = {_V.UINT8: "u1", _V.INT8: "i1", _V.UINT16: "u2", _V.INT16: "i2", _V.UINT32: "u4", _V.INT32: "i4",
            _V.FLOAT32: "f4", _V.UINT64: "u8", _V.INT64: "i8", _V.FLOAT64: "f8", _V.BOOL: "?"}


def _utf8_lengths(values: Sequence[str], joined: bytes, n_chars: int) -> np.ndarray:
    """Byte length of each string's UTF-8 form, given the UTF-8 of all of them joined (``n_chars`` long).

    ASCII text (most of a vocabulary) has one byte per character. Otherwise every character starts with
    exactly one byte that is not a continuation byte (``10xxxxxx``), so the byte offset of each string's
    first character is read off the positions of those lead bytes; no string is encoded on its own.
    """
    chars = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    if len(joined) == n_chars:
        return chars.astype(np.uint64)
    payload = np.frombuffer(joined, dtype=np.uint8)
    lead = np.flatnonzero((payload & 0xC0) != 0x80)  # byte offset of every character, plus the end below
    offsets = np.append(lead, len(joined))[np.concatenate(([0], np.cumsum(chars)))]
    return np.diff(offsets).astype(np.uint64)


def pack_strings(values: Sequence[str | bytes], byteorder: str = "<") -> bytes:
    """``values`` as GGUF array items: for each, a uint64 length in ``byteorder`` then its UTF-8 bytes."""
    n = len(values)
    if set(map(type, values)) == {str}:  # one encode of the joined text, not one per string
        text = "".join(values)
        joined = text.encode("utf-8")  # a lone surrogate raises here, as gguf-py's per-item encode does
        lengths = _utf8_lengths(values, joined, len(text))
    else:
        encoded = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        lengths = np.fromiter(map(len, encoded), dtype=np.uint64, count=n)
        joined = b"".join(encoded)
    return interleave_lengths(lengths, np.frombuffer(joined, dtype=np.uint8), byteorder)


def uniform_type(values: Sequence[Any]) -> Any | None:
    """The GGUF item type gguf-py would infer for ``values`` (all items alike), or None when it would not."""
    kinds = set(map(type, values))  # C-level pass: a vocabulary array has ~150k items
    try:
        found = {_V.get_type(next(v for v in values if type(v) is kind)) for kind in kinds}
    except ValueError:  # a type gguf-py cannot store: its own packing raises the error
        return None
    return found.pop() if len(found) == 1 else None


def pack_items(values: Sequence[Any], item_type: Any, byteorder: str = "<") -> bytes | None:
    """The items of a GGUF array in bulk, or None for item types packed one by one (nested arrays)."""
    if item_type == _V.STRING:
        return pack_strings(values, byteorder)
    code = _NUMERIC.get(item_type)
    if code is None:
        return None
    if code[0] in "iu?" and uniform_type(values) not in (_V.INT32, _V.BOOL):
        return None  # gguf-py's struct.pack refuses floats in integer arrays: let it say so
    dtype = np.dtype(code if code in ("u1", "i1", "?") else f"{byteorder}{code}")
    return np.asarray(values, dtype=dtype).tobytes()


class BulkGGUFWriter(gguf.GGUFWriter):
    """``gguf.GGUFWriter`` whose metadata arrays are packed in bulk (byte-identical output)."""

    def _pack_val(self, val: Any, vtype: Any, add_vtype: bool, sub_type: Any = None) -> bytes:
        from ftwiz.core.export.merges_raw import PackedStrings
        from ftwiz.core.export.vocab_cache import RawArray

        if vtype == _V.ARRAY and isinstance(val, RawArray):  # items cached in their little-endian layout
            if self.endianess != gguf.GGUFEndian.LITTLE:
                raise ValueError("cached vocabulary arrays are little-endian; write a little-endian GGUF")
            head = self._pack("I", vtype) if add_vtype else b""
            return head + self._pack("I", val.item_type) + self._pack("Q", val.count) + val.items
        if vtype == _V.ARRAY and isinstance(val, PackedStrings):  # merges read straight from tokenizer.json
            byteorder = "<" if self.endianess == gguf.GGUFEndian.LITTLE else ">"
            head = self._pack("I", vtype) if add_vtype else b""
            return head + self._pack("I", _V.STRING) + self._pack("Q", len(val)) + val.items(byteorder)
        if vtype == _V.ARRAY and isinstance(val, Sequence) and not isinstance(val, (str, bytes, bytearray)) and val:
            item_type = sub_type if sub_type is not None else uniform_type(val)
            byteorder = "<" if self.endianess == gguf.GGUFEndian.LITTLE else ">"
            items = pack_items(val, item_type, byteorder) if item_type is not None else None
            if items is not None:
                head = self._pack("I", vtype) if add_vtype else b""
                return head + self._pack("I", item_type) + self._pack("Q", len(val)) + items
        return super()._pack_val(val, vtype, add_vtype, sub_type)
