"""What deployment needs from a GGUF file, read from its key/value metadata.

Why read the GGUF and not the HF folder: the GGUF is what Ollama and llama.cpp will run, so the chat
template, BOS behaviour and the token types that decide which stop tokens work must come from it.
The reader memory-maps the file, so this is cheap even for multi-GB models.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError
from ftwiz.core.quant_types import QUANT_TYPES

CONTROL_TOKEN_TYPE = 3  # gguf.TokenType.CONTROL (llama.cpp's LLAMA_TOKEN_TYPE_CONTROL)

# file_type values written in general.file_type (llama.cpp's LLAMA_FTYPE_*); names as users see them:
# the types ftwiz writes (core/quant_types.py), and those other tools write that ftwiz only reads.
_FILE_TYPES = {**{q.file_type: name for name, q in QUANT_TYPES.items()},
               3: "Q4_1", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L",
               14: "Q4_K_S", 16: "Q5_K_S"}


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    architecture: str
    name: str | None
    chat_template: str | None
    tokens: list[str] = field(repr=False)
    token_types: list[int] = field(repr=False)
    bos_token: str | None
    eos_token: str | None
    add_bos: bool
    context_length: int | None
    file_type: str | None
    size: int
    # tokens the GGUF names as ends of generation: eos, then eot/eom (tokenizer.ggml.eot_token_id, ...)
    end_tokens: tuple[str, ...] = ()

    def is_control(self, text: str) -> bool:
        """True when ``text`` is a single control token of the vocabulary (what a stop token must be)."""
        index = self._index().get(text)
        return index is not None and index < len(self.token_types) and self.token_types[index] == CONTROL_TOKEN_TYPE

    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_token_index")
        if cached is None:
            cached = {tok: i for i, tok in enumerate(self.tokens)}
            object.__setattr__(self, "_token_index", cached)
        return cached


# GGUF keys naming end-of-generation tokens (llama.cpp's LLM_KV_TOKENIZER_*_ID).
_END_KEYS = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")

_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def read_metadata(path: Path, wanted: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """All key/value metadata of a GGUF (format spec: ggml's docs/gguf.md), without touching tensor data; with
    ``wanted``, only the keys it accepts (the others are stepped over without building their values: a
    151k-token vocabulary is skipped in ~0.05 s instead of read in ~0.7 s).

    Why not ``gguf.GGUFReader``: it builds Python objects for every part of every field, which takes
    ~6 s for a 32k vocabulary and far longer for Qwen's 151k on a small machine, and registration or chat
    would wait on it. This reads the same bytes directly from a memory map (tests cross-check it against
    GGUFReader). Numeric arrays stay numpy arrays.
    """
    import mmap

    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return _parse_metadata(mm, wanted)[0]


def _parse_metadata(mm: Any, wanted: Callable[[str], bool] | None) -> tuple[dict[str, Any], int, str, int]:
    """:func:`read_metadata` on a memory map: the metadata, the offset where the tensor infos start, the byte
    order ("<" or ">") and the number of tensors."""
    import numpy as np

    if mm[:4] != b"GGUF":
        raise ValueError("missing GGUF magic")
    order = "<" if struct.unpack_from("<I", mm, 4)[0] < 0x10000 else ">"
    version = struct.unpack_from(order + "I", mm, 4)[0]
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old")
    tensors, count = struct.unpack_from(order + "QQ", mm, 8)
    pos = 24

    def string(at: int) -> tuple[str, int]:
        (length,) = struct.unpack_from(order + "Q", mm, at)
        start = at + 8
        return bytes(mm[start:start + length]).decode("utf-8", errors="replace"), start + length

    def skip(kind: int, at: int) -> int:
        if kind == _STRING:
            return at + 8 + struct.unpack_from(order + "Q", mm, at)[0]
        if kind == _ARRAY:
            item_kind, n = struct.unpack_from(order + "IQ", mm, at)
            at += 12
            if item_kind in _SCALARS:
                return at + n * struct.calcsize(_SCALARS[item_kind])
            if item_kind == _STRING:  # the vocabulary: one length read per item, nothing built
                length = struct.Struct(order + "Q").unpack_from
                for _ in range(n):
                    at += 8 + length(mm, at)[0]
                return at
            for _ in range(n):
                at = skip(item_kind, at)
            return at
        if kind not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {kind}")
        return at + struct.calcsize(_SCALARS[kind])

    def value(kind: int, at: int) -> tuple[Any, int]:
        if kind == _STRING:
            return string(at)
        if kind == _ARRAY:
            item_kind, n = struct.unpack_from(order + "IQ", mm, at)
            at += 12
            if item_kind in _SCALARS:
                dtype = np.dtype(_SCALARS[item_kind] if item_kind != 7 else "?").newbyteorder(order)
                arr = np.frombuffer(mm, dtype=dtype, count=n, offset=at).copy()
                return arr, at + n * dtype.itemsize
            items = []
            for _ in range(n):
                item, at = value(item_kind, at)
                items.append(item)
            return items, at
        if kind not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {kind}")
        fmt = order + _SCALARS[kind]
        return struct.unpack_from(fmt, mm, at)[0], at + struct.calcsize(fmt)

    meta: dict[str, Any] = {}
    for _ in range(count):
        key, pos = string(pos)
        (kind,) = struct.unpack_from(order + "I", mm, pos)
        if wanted is None or wanted(key):
            meta[key], pos = value(kind, pos + 4)
        else:
            pos = skip(kind, pos + 4)
    return meta, pos, order, tensors


def cut_off(path: Path) -> tuple[int, int] | None:
    """(bytes its tensors need, bytes the file has) when a GGUF ends before its last tensor's data, else None.

    Reads only the header and the tensor infos. llama.cpp refuses such a file with nothing more than "Failed
    to load model"; a tensor type the installed ``gguf`` does not know is not counted.
    """
    import math
    import mmap

    from gguf.constants import GGML_QUANT_SIZES

    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        meta, pos, order, tensors = _parse_metadata(mm, lambda key: key == "general.alignment")
        end = 0
        for _ in range(tensors):  # name, n_dims, dims, type, offset (ggml's docs/gguf.md)
            pos += 8 + struct.unpack_from(order + "Q", mm, pos)[0]
            (n_dims,) = struct.unpack_from(order + "I", mm, pos)
            dims = struct.unpack_from(order + "Q" * n_dims, mm, pos + 4)
            kind, offset = struct.unpack_from(order + "IQ", mm, pos + 4 + 8 * n_dims)
            pos += 4 + 8 * n_dims + 12
            if kind in GGML_QUANT_SIZES:
                block, type_size = GGML_QUANT_SIZES[kind]
                end = max(end, offset + math.prod(dims) // block * type_size)
        if not tensors:  # a vocabulary-only GGUF need not be padded to the alignment
            return None
        alignment = int(meta.get("general.alignment", 32))
        needed = -(-pos // alignment) * alignment + end
        return (needed, len(mm)) if needed > len(mm) else None


def _default_add_bos(meta: dict[str, Any]) -> bool:
    """llama.cpp's default when ``tokenizer.ggml.add_bos_token`` is absent: SentencePiece vocabularies and
    Llama-3-style BPE add BOS, other BPE vocabularies do not."""
    model = meta.get("tokenizer.ggml.model")
    pre = meta.get("tokenizer.ggml.pre")
    return model == "llama" or (model == "gpt2" and pre in ("llama3", "llama-v3", "llama-bpe", "falcon3"))


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Chat-relevant metadata of a GGUF; FtwizError when the file is missing or not a GGUF."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FtwizError(f"GGUF file not found: {file}", where=str(file),
                         fix="give the path of a .gguf file (ftwiz export writes them to runs/<run>/export/)")
    try:
        meta = read_metadata(file)
        cut = cut_off(file)
    except (ValueError, OSError, struct.error, IndexError) as exc:
        raise FtwizError(f"not a readable GGUF file: {exc}", where=str(file),
                         fix="export the model again with `ftwiz export`; the file may be truncated") from None
    if cut:
        from ftwiz.core.diskspace import human_bytes

        raise FtwizError(f"the GGUF file is cut off: it has {human_bytes(cut[1])} of the {human_bytes(cut[0])} "
                         "its tensors need", where=str(file),
                         fix="copy it again, or export it again with `ftwiz export` (an interrupted copy or "
                             "download leaves a file like this)")
    arch = meta.get("general.architecture") or "unknown"
    raw_tokens, raw_types = meta.get("tokenizer.ggml.tokens"), meta.get("tokenizer.ggml.token_type")
    tokens = list(raw_tokens) if raw_tokens is not None else []
    types = [int(t) for t in raw_types] if raw_types is not None else []

    def token(key: str) -> str | None:
        idx = meta.get(key)
        return tokens[int(idx)] if idx is not None and 0 <= int(idx) < len(tokens) else None

    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    ctx = meta.get(f"{arch}.context_length")
    ftype = meta.get("general.file_type")
    return GGUFInfo(
        path=file.resolve(), architecture=str(arch), name=meta.get("general.name"),
        chat_template=meta.get("tokenizer.chat_template"), tokens=tokens, token_types=types,
        bos_token=token("tokenizer.ggml.bos_token_id"), eos_token=token("tokenizer.ggml.eos_token_id"),
        add_bos=bool(add_bos) if add_bos is not None else _default_add_bos(meta),
        context_length=int(ctx) if ctx is not None else None,
        file_type=_FILE_TYPES.get(int(ftype), str(ftype)) if ftype is not None else None,
        size=file.stat().st_size,
        end_tokens=tuple(dict.fromkeys(t for key in _END_KEYS if (t := token(key)) is not None)),
    )
