"""Read and write safetensors one tensor at a time (merge and convert never hold a whole model).

Why not ``safe_open``: it memory-maps the shard, and every page it touches stays in the process's
resident set until the file is closed, so converting a 5 GB shard shows 5 GB of RSS. Reading each
tensor with ``os.pread`` at the offsets the (JSON) header gives keeps resident memory at one tensor.
The format is tiny and documented (8-byte little-endian header length, JSON header with dtype, shape
and data_offsets per tensor, then the raw little-endian data), so the reader and the streaming
writer below are a few lines each; files stay readable by ``safetensors`` and transformers.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

# safetensors dtype name -> (torch dtype name, bytes per element)
DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1), "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor lives, with its shape and dtype read from the file header (no data loaded)."""

    name: str
    file: Path
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype string: F32, F16, BF16, U8, ...
    start: int = 0  # absolute byte offset of the data in the file
    end: int = 0

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def weight_files(model_dir: Path, *, pattern: str = "*.safetensors") -> list[Path]:
    """The safetensors shards of a model folder, in index order; refuses pickled checkpoints."""
    model_dir = Path(model_dir)
    index = model_dir / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (model_dir / f).is_file()]
        single = model_dir / SINGLE_NAME
        if single.is_file() and len(missing) == len(files):  # the index outlived its shards: save_pretrained
            return [single]  # of one file keeps an old index; transformers loads model.safetensors, as here
        if single.is_file() and not missing and files != [SINGLE_NAME]:  # (an index of model.safetensors alone
            raise _two_weight_sets(single, [model_dir / f for f in files], index)  # is one set, as a merge writes)
        if missing:
            raise FtwizError(f"shard {missing[0]} listed in the index is missing", where=Location(file=index),
                             fix="re-download or re-save the model so every shard is present")
        return [model_dir / f for f in files]
    files = [f for f in sorted(model_dir.glob(pattern)) if f.name != "adapter_model.safetensors"]
    if not files:
        pickled = list(model_dir.glob("*.bin")) + list(model_dir.glob("*.pt"))
        fix = ("re-save it as safetensors: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
               "safe_serialization=True)" if pickled else "point at a folder with *.safetensors weights")
        raise FtwizError("no safetensors weights found" + (" (only pickled .bin/.pt files, which ftwiz does "
                         "not load)" if pickled else ""), where=Location(file=model_dir), fix=fix)
    return files


def _two_weight_sets(single: Path, shards: list[Path], index: Path) -> FtwizError:
    """A folder holding model.safetensors and every shard of an index: a sharded save_pretrained into a folder
    with an older single-file save keeps that file. transformers loads model.safetensors, llama.cpp's converter
    the shards: which one is the model cannot be told, so the user is asked, shown which is newer."""
    import time

    newest = max(shards, key=lambda f: f.stat().st_mtime)
    single_newer = single.stat().st_mtime > newest.stat().st_mtime

    def when(f: Path) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(f.stat().st_mtime))

    stale = f"{index.name} and its {len(shards)} shards" if single_newer else single.name
    return FtwizError(f"the folder holds two sets of weights: {single.name} (saved {when(single)}) and the "
                      f"{len(shards)} shards listed in {index.name} (newest saved {when(newest)}); transformers "
                      f"loads {single.name}, llama.cpp's converter the shards", where=Location(file=single.parent),
                      fix=f"delete the stale set ({stale}, the older one) and run the command again")


def read_header(file: Path) -> tuple[list[TensorRef], dict[str, str]]:
    """Tensor refs (in data order) and the ``__metadata__`` of one safetensors file."""
    file = Path(file)
    with open(file, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise FtwizError("file is too short to be safetensors", where=Location(file=file),
                             fix="the download or save was interrupted; fetch the file again")
        (size,) = struct.unpack("<Q", raw)
        _check_header_size(file, raw, size)
        try:
            header = json.loads(handle.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FtwizError("safetensors header is corrupt", where=Location(file=file),
                             fix="the download or save was interrupted; fetch the file again") from None
    metadata = header.pop("__metadata__", None) or {}
    base = 8 + size
    try:
        refs = [
            TensorRef(name, file, tuple(int(n) for n in info["shape"]), str(info["dtype"]),
                      base + int(info["data_offsets"][0]), base + int(info["data_offsets"][1]))
            for name, info in header.items()
        ]
    except (KeyError, IndexError, TypeError, ValueError):
        raise FtwizError("safetensors header is corrupt (a tensor lacks dtype, shape or data_offsets)",
                         where=Location(file=file),
                         fix="the download or save was interrupted; fetch the file again") from None
    refs.sort(key=lambda r: r.start)
    _check_extents(file, refs, base)
    if refs and refs[-1].end > file.stat().st_size:
        raise FtwizError(f"file is truncated: tensor {refs[-1].name} ends at byte {refs[-1].end}, the file has "
                         f"{file.stat().st_size}", where=Location(file=file),
                         fix="the download or save was interrupted; fetch the file again")
    return refs, metadata


# safetensors itself refuses headers over 100 MB; a larger "length" means the file is not safetensors at all
MAX_HEADER_BYTES = 100_000_000


def _check_header_size(file: Path, raw: bytes, size: int) -> None:
    """Refuse a header length no safetensors file has (before reading that many bytes: a Git LFS pointer or
    an HTML error page saved as ``model.safetensors`` reads as a length of ~10^18)."""
    if size <= file.stat().st_size - 8 and size <= MAX_HEADER_BYTES:
        return
    if size <= MAX_HEADER_BYTES:
        raise FtwizError(f"file is truncated: its header alone is {size} bytes, the file has "
                         f"{file.stat().st_size}", where=Location(file=file),
                         fix="the download or save was interrupted; fetch the file again")
    if raw.startswith(b"version "):
        raise FtwizError("this is a Git LFS pointer file, not the weights", where=Location(file=file),
                         fix="fetch the real file: `git lfs pull` in the model's folder, or download it again "
                             "(ftwiz pull)")
    raise FtwizError(f"not a safetensors file (its header length reads as {size} bytes; the file has "
                     f"{file.stat().st_size})", where=Location(file=file),
                     fix="the download or save was interrupted or saved an error page; fetch the file again")


def _check_extents(file: Path, refs: list[TensorRef], base: int) -> None:
    """Each tensor's bytes must match its shape and dtype and not overlap the next one (``refs`` sorted by
    start), as safetensors' own loader demands; otherwise conversion would read another tensor's bytes."""
    previous_end = base
    for ref in refs:
        if ref.start < previous_end or ref.end < ref.start:
            raise FtwizError(f"tensor {ref.name}'s data_offsets overlap another tensor's bytes",
                             where=Location(file=file), fix="the file is damaged; fetch or save it again")
        previous_end = ref.end
        if ref.dtype in DTYPES:
            count = 1
            for n in ref.shape:
                count *= n
            if count * DTYPES[ref.dtype][1] != ref.nbytes:
                raise FtwizError(f"tensor {ref.name} is {ref.dtype} {list(ref.shape)} ({count * DTYPES[ref.dtype][1]}"
                                 f" bytes) but its data_offsets span {ref.nbytes} bytes",
                                 where=Location(file=file), fix="the file is damaged; fetch or save it again")


def list_tensors(model_dir: Path) -> list[TensorRef]:
    """Every tensor's name, shape, dtype and location from the shard headers."""
    refs: list[TensorRef] = []
    for file in weight_files(model_dir):
        refs.extend(read_header(file)[0])
    return refs


def read_tensor(ref: TensorRef, handle: Any | None = None):
    """Load one tensor into memory (a fresh torch tensor, not a view of a mapped file)."""
    import torch

    torch_dtype = getattr(torch, DTYPES[ref.dtype][0])
    fd = handle.fileno() if handle is not None else None
    close = fd is None
    if fd is None:
        fd = os.open(ref.file, os.O_RDONLY)
    try:
        buf = _read_bytes(ref, fd)
    finally:
        if close:
            os.close(fd)
    if ref.nbytes == 0:
        return torch.empty(ref.shape, dtype=torch_dtype)
    return torch.frombuffer(buf, dtype=torch_dtype).reshape(ref.shape)


# safetensors dtype -> numpy dtype for raw reads; bfloat16 has no numpy type and comes back as its uint16 bits
NUMPY_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "uint16", "I64": "int64",
                "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _read_bytes(ref: TensorRef, fd: int, buf=None):
    """Read one tensor's bytes into ``buf`` (a fresh bytearray by default)."""
    buf = bytearray(ref.nbytes) if buf is None else buf
    view = memoryview(buf).cast("B")
    got = 0
    while got < ref.nbytes:  # pread may return short reads on large tensors
        n = os.preadv(fd, [view[got:]], ref.start + got)
        if n <= 0:
            raise FtwizError(f"tensor {ref.name} is truncated", where=Location(file=ref.file),
                             fix="the file is incomplete; fetch or save it again")
        got += n
    return buf


class StreamingSafetensorsWriter:
    """Write a safetensors file tensor by tensor: the header is computed from declared shapes first.

    Declare every (name, dtype, shape) up front, then call :meth:`write` in the same order. Only the
    tensor being written is in memory.
    """

    def __init__(self, path: Path, entries: list[tuple[str, str, tuple[int, ...]]],
                 metadata: dict[str, str] | None = None) -> None:
        header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
        offset = 0
        self._order: list[tuple[str, int]] = []
        for name, dtype, shape in entries:
            n = DTYPES[dtype][1]
            for d in shape:
                n *= d
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
            self._order.append((name, n))
            offset += n
        blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
        blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned, as the reference writer does
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._file.write(struct.pack("<Q", len(blob)))
        self._file.write(blob)
        self._next = 0

    def write(self, name: str, tensor) -> None:
        import torch

        expected_name, nbytes = self._order[self._next]
        if name != expected_name:
            raise ValueError(f"expected tensor {expected_name}, got {name}")
        data = tensor.contiguous().view(-1).view(torch.uint8).numpy() if tensor.numel() else b""
        if len(data) != nbytes:
            raise ValueError(f"tensor {name} has {len(data)} bytes, header says {nbytes}")
        self._file.write(memoryview(data) if len(data) else b"")
        self._next += 1

    def finish(self) -> None:
        """Close after checking every declared tensor was written (a short file would load as garbage)."""
        if self._next != len(self._order):
            self.close()
            raise ValueError(f"only {self._next} of {len(self._order)} tensors were written")
        self.close()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
