"""The data section of a GGUF, written in parallel straight into the page cache.

``gguf.GGUFWriter`` writes the header (keys, tensor infos); the data section that follows is a run of
tensors in header order, each starting at a multiple of the alignment. Because every tensor's offset is
known from the plan, the file is reserved at full size up front (``posix_fallocate``, so a full disk is
a clean error rather than a crash while writing through a mapping) and each tensor is then written
independently:

- bytes that do not change (an F16 model exported as F16, except the llama q/k rows) are copied file to
  file inside the kernel with ``copy_file_range``;
- converted tensors are read through a read-only mapping of their range in the safetensors file and
  written into a mapping of their range in the GGUF: no read() or write() copies, and nothing but the
  conversion itself touches the data;
- several tensors are converted at once on worker threads (numpy releases the GIL).

Mappings are opened per tensor and closed right after, so resident memory stays at a few tensors.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.tensors import NUMPY_DTYPES

Progress = Callable[[int, int, str], None]


def passthrough(plan: Any) -> bool:
    """Stored bytes are already what GGUF wants: copy them file to file without passing through Python."""
    import gguf

    q = gguf.GGMLQuantizationType
    same = {q.F32: "F32", q.F16: "F16", q.BF16: "BF16"}.get(plan.qtype)
    return plan.ref is not None and not plan.permute_heads and plan.ref.dtype == same


@contextlib.contextmanager
def mapped(fd: int, offset: int, length: int, *, write: bool = False) -> Iterator[memoryview]:
    """A memoryview of ``length`` bytes at ``offset`` of ``fd``; unmapped on exit."""
    if length == 0:
        yield memoryview(bytearray(0))
        return
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    access = mmap.ACCESS_WRITE if write else mmap.ACCESS_READ
    region = mmap.mmap(fd, length + offset - start, offset=start, access=access)
    view = memoryview(region)[offset - start: offset - start + length]
    try:
        yield view
    finally:
        try:
            view.release()
            region.close()
        except BufferError:  # an exception left arrays alive in its traceback: the GC unmaps later
            pass


def copy_range(src_fd: int, dst_fd: int, src_offset: int, dst_offset: int, nbytes: int) -> None:
    """Kernel-side copy where the file system allows it, else pread + pwrite in 16 MiB pieces."""
    copied = 0
    try:
        while copied < nbytes:
            n = os.copy_file_range(src_fd, dst_fd, nbytes - copied, src_offset + copied, dst_offset + copied)
            if n <= 0:
                raise OSError(errno.EIO, "short copy")
            copied += n
    except (OSError, AttributeError):
        while copied < nbytes:
            chunk = os.pread(src_fd, min(1 << 24, nbytes - copied), src_offset + copied)
            if not chunk:
                raise FtwizError("a tensor is truncated in its safetensors file",
                                 fix="the model files are incomplete; fetch or save them again") from None
            os.pwrite(dst_fd, chunk, dst_offset + copied)
            copied += len(chunk)


def _reserve(fd: int, size: int, path: Path) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise FtwizError(f"not enough disk space for the GGUF ({size / 2**20:.0f} MiB)",
                             where=Location(file=path.parent), fix="free some space or choose another --out") from None
        os.ftruncate(fd, size)  # file systems without fallocate (some network mounts)


def _convert_one(plan: Any, src_fd: int | None, dst_fd: int, dst_offset: int, params: Any) -> None:
    import numpy as np
    from ftwiz.core.export.dtypes import bf16_bits_to_f16, to_gguf_array

    if plan.ref is not None and passthrough(plan):
        copy_range(src_fd, dst_fd, plan.ref.start, dst_offset, plan.nbytes)
        return
    with mapped(dst_fd, dst_offset, plan.nbytes, write=True) as out_view:
        out = np.frombuffer(out_view, dtype=np.uint8)
        if plan.ref is None:
            data = to_gguf_array(plan, None, params)
            out[:] = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
            del data, out
            return
        with mapped(src_fd, plan.ref.start, plan.ref.nbytes) as in_view:
            source = np.frombuffer(in_view, dtype=NUMPY_DTYPES[plan.ref.dtype]).reshape(plan.ref.shape)
            if _is_bf16_to_f16(plan):  # the common case for today's models: convert straight into the file
                bf16_bits_to_f16(_permuted(plan, source), out=out.view(np.uint16))
            else:
                data = to_gguf_array(plan, source, params)
                out[:] = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
                del data
            del source
        del out


def _is_bf16_to_f16(plan: Any) -> bool:
    import gguf

    return plan.ref.dtype == "BF16" and plan.qtype == gguf.GGMLQuantizationType.F16


def _permuted(plan: Any, array):
    from ftwiz.core.export.convert import permute_rotate_half

    return permute_rotate_half(array, plan.permute_heads) if plan.permute_heads else array


def write_data(path: Path, alignment: int, plans: list[Any], params: Any, progress: Progress | None,
               threads: int | None = None) -> None:
    """Fill the data section of ``path`` (whose header is already written) with every planned tensor."""
    header_end = path.stat().st_size
    offsets: list[int] = []
    position = header_end + (-header_end % alignment)
    for plan in plans:
        offsets.append(position)
        position += plan.nbytes + (-plan.nbytes % alignment)
    src_fds: dict[Path, int] = {}
    dst_fd = os.open(path, os.O_RDWR)
    try:
        _reserve(dst_fd, position, path)
        for plan in plans:
            if plan.ref is not None and plan.ref.file not in src_fds:
                src_fds[plan.ref.file] = os.open(plan.ref.file, os.O_RDONLY)
        workers = threads or max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(_convert_one, plan, src_fds.get(plan.ref.file) if plan.ref else None, dst_fd,
                            offset, params): plan
                for plan, offset in zip(plans, offsets, strict=True)
            }
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()
                if progress:
                    progress(done, len(plans), futures[future].name)
    finally:
        os.close(dst_fd)
        for fd in src_fds.values():
            os.close(fd)
