"""The data section of a GGUF, converted on worker threads in pieces of a few MiB.

``gguf.GGUFWriter`` writes the header (keys, tensor infos); the data section that follows is a run of
tensors in header order, each starting at a multiple of the alignment. Because every tensor's offset is
known from the plan, the file is reserved at full size up front (``posix_fallocate``, so a full disk is
a clean error at the start rather than after minutes of work) and filled out of order:

- bytes that do not change (an F16 model exported as F16, except the llama q/k rows) are copied file to
  file inside the kernel with ``copy_file_range``;
- everything else is cut into pieces of whole rows (whole heads for the permuted llama q/k), so a large
  embedding keeps every core busy and memory stays at a few pieces. Each piece is read through a
  read-only mapping of its range in the safetensors file, converted into a per-thread buffer and written
  with ``pwrite``. (Writing through a mapping of the GGUF was measured 2.5x slower: every first write to
  a page of a new file is a page fault that allocates the block.) The common bfloat16 -> F16 case is
  converted straight out of one read-only mapping of each whole safetensors file (:class:`SourceMap`),
  1 MiB at a time into a per-thread buffer, and each finished piece's pages are dropped from the mapping
  with ``MADV_DONTNEED``. Against ``preadv`` into the buffer that saves the kernel's copy of every byte
  (0.1-0.15 CPU-s per GB), and against a mapping per piece it saves the unmapping, whose TLB shoot-downs
  between the cores cost 0.1 s wall and CPU per GB with two threads. Dropping the pages keeps the
  process's resident memory at a few pieces, not the model (the bytes stay in the page cache). Where
  ``MADV_DONTNEED`` is missing (not Linux) that case reads with ``preadv`` and converts in place.

numpy releases the GIL while converting, so the pieces run side by side on the worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.tensors import NUMPY_DTYPES

Progress = Callable[[int, int, str], None]
PIECE_BYTES = 1 << 25  # source bytes per piece: released (or unmapped) as a whole; 32 MiB measured 5-8% faster
# than 4 MiB for the data section (fewer page releases, each a TLB shoot-down between the cores), and resident
# memory stays at one piece per worker thread
BLOCK_BYTES = 1 << 18  # source bytes converted and written at once: fits in the CPU's L2 cache
READ_BYTES = 1 << 20  # bfloat16 -> F16 blocks read, converted in place and written (measured best of 128K-4M)


@dataclass(frozen=True)
class Piece:
    """Rows ``first:stop`` of one planned tensor, written at ``dst_offset`` of the GGUF."""

    plan: Any  # convert.TensorPlan
    first: int
    stop: int
    dst_offset: int


def passthrough(plan: Any) -> bool:
    """Stored bytes are already what GGUF wants: copy them file to file without passing through Python."""
    import gguf

    q = gguf.GGMLQuantizationType
    same = {q.F32: "F32", q.F16: "F16", q.BF16: "BF16"}.get(plan.qtype)
    return plan.ref is not None and not plan.permute_heads and not plan.add_one and plan.ref.dtype == same


def split(plan: Any, offset: int, piece_bytes: int | None = None) -> list[Piece]:
    """Cut one tensor into pieces of whole rows; a copied, synthesised or 1-D tensor is one piece."""
    piece_bytes = piece_bytes or PIECE_BYTES
    rows = plan.shape[0] if len(plan.shape) > 1 else 1
    if plan.ref is None or passthrough(plan) or rows <= 1 or plan.nbytes == 0:
        return [Piece(plan, 0, rows, offset)]
    src_row, dst_row = plan.ref.nbytes // rows, plan.nbytes // rows
    step = max(1, piece_bytes // max(1, src_row))
    if plan.permute_heads:  # the q/k permutation works per head: keep heads whole
        head_rows = rows // plan.permute_heads
        step = max(head_rows, step // head_rows * head_rows)
    return [Piece(plan, first, min(rows, first + step), offset + first * dst_row) for first in range(0, rows, step)]


def require_length(fd: int, end: int) -> None:
    """FtwizError unless the file behind ``fd`` still holds ``end`` bytes.

    Checked before each piece is read through a mapping: reading a mapped page past the end of a file that
    shrank meanwhile (a model saved again during its export) kills the process with SIGBUS, with no message
    and no clean-up. A file cut after this check, within the few milliseconds a piece takes, still can.
    """
    if os.fstat(fd).st_size < end:
        raise FtwizError("a tensor is truncated in its safetensors file (it shrank during the export: was the "
                         "model saved again meanwhile?)",
                         fix="the model files are incomplete; fetch or save them again, then export")


@contextlib.contextmanager
def mapped(fd: int, offset: int, length: int) -> Iterator[memoryview]:
    """A read-only memoryview of ``length`` bytes at ``offset`` of ``fd``; unmapped on exit."""
    if length == 0:
        yield memoryview(b"")
        return
    require_length(fd, offset + length)
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)  # fault the range in at once: fewer traps
    region = mmap.mmap(fd, length + offset - start, flags=flags, prot=mmap.PROT_READ, offset=start)
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
            write_all(dst_fd, chunk, dst_offset + copied)
            copied += len(chunk)


def write_all(fd: int, data: Any, offset: int) -> None:
    """``pwrite`` until every byte is written (one call may write less, e.g. above 2 GiB)."""
    view = memoryview(data)
    if view.nbytes == 0:
        return
    view = view.cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _reserve(fd: int, size: int, path: Path) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise FtwizError(f"not enough disk space for the GGUF ({size / 2**20:.0f} MiB)",
                             where=Location(file=path.parent), fix="free some space or choose another --out") from None
        os.ftruncate(fd, size)  # file systems without fallocate (some network mounts)


class SourceMap:
    """One read-only mapping of a whole safetensors file, for converting straight out of the page cache.

    ``address`` is where byte 0 of the file is mapped. :meth:`release` drops a finished range's pages from
    this process (``MADV_DONTNEED`` on a shared file mapping only unmaps them: the file and the page cache
    are untouched, and a page read again is simply mapped again), so resident memory stays at the pieces
    being converted. Pages shared by two pieces stay mapped (at most two per piece).
    """

    def __init__(self, fd: int, size: int) -> None:
        import numpy as np

        self.fd = fd
        self.region = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        self._bytes = np.frombuffer(self.region, dtype=np.uint8)  # only for its address (read-only buffer)
        self.address: int = self._bytes.ctypes.data

    @staticmethod
    def available() -> bool:
        """Whole-file mappings with page release: Linux (elsewhere MADV_DONTNEED may keep the pages)."""
        return sys.platform.startswith("linux") and hasattr(mmap, "MADV_DONTNEED") and hasattr(mmap.mmap, "madvise")

    def release(self, offset: int, nbytes: int) -> None:
        """Unmap the whole pages inside ``[offset, offset + nbytes)``."""
        start = -(-offset // mmap.PAGESIZE) * mmap.PAGESIZE
        stop = (offset + nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
        if stop > start:
            self.region.madvise(mmap.MADV_DONTNEED, start, stop - start)

    def close(self) -> None:
        self._bytes = None
        self.region.close()


def _plain_bf16_to_f16(plan: Any) -> Any:
    """ggml's kernels when ``plan`` is a bfloat16 tensor written as F16 unchanged (no q/k permutation, no
    Gemma +1, not quantized afterwards), else None (the general path)."""
    import gguf

    if (plan.qtype != gguf.GGMLQuantizationType.F16 or plan.ref.dtype != "BF16" or plan.permute_heads
            or plan.add_one or getattr(plan, "via_f16", False)):
        return None
    from ftwiz.core.export.ggml_kernels import kernels

    return kernels()


class _Converter:
    """Converts pieces on worker threads; each thread keeps one output buffer for bfloat16 -> float16."""

    def __init__(self, src_fds: dict[Path, int], dst_fd: int, maps: dict[Path, SourceMap] | None = None,
                 overflow: Any = None) -> None:
        self.src_fds, self.dst_fd, self.maps = src_fds, dst_fd, maps or {}
        self.overflow = overflow  # f16_range.OverflowLog: values that become ±inf as float16, or None (not looked for)
        self.local = threading.local()

    def _buffer(self, size: int):
        import numpy as np

        buf = getattr(self.local, "buf", None)
        if buf is None or buf.size < size:
            buf = self.local.buf = np.empty(size, dtype=np.uint16)
        return buf

    def __call__(self, piece: Piece) -> None:
        import numpy as np

        plan = piece.plan
        if plan.nbytes == 0:  # an empty tensor: its header entry is all there is
            return
        if plan.ref is None:  # synthesised from config.json (rope frequency factors)
            write_all(self.dst_fd, np.asarray(plan.values, dtype=np.float32), piece.dst_offset)
            return
        src_fd = self.src_fds[plan.ref.file]
        if passthrough(plan):
            copy_range(src_fd, self.dst_fd, plan.ref.start, piece.dst_offset, plan.nbytes)
            return
        rows = plan.shape[0] if len(plan.shape) > 1 else 1
        src_row, count = plan.ref.nbytes // rows, piece.stop - piece.first
        shape = (count, *plan.shape[1:]) if len(plan.shape) > 1 else plan.shape
        kernels = _plain_bf16_to_f16(plan)
        if kernels is not None:
            from ftwiz.core.export import f16_range

            f16_range.clear_overflow_flag()  # raised by ggml's float16 step for a finite value that becomes inf
            source = self.maps.get(plan.ref.file)
            if source is not None:
                self._bf16_to_f16_mapped(source, plan.ref.start + piece.first * src_row, count * src_row,
                                         piece.dst_offset, kernels)
            else:
                self._bf16_to_f16_read(src_fd, plan.ref.start + piece.first * src_row, count * src_row,
                                       piece.dst_offset, kernels)
            if self.overflow is not None and (f16_range.overflow_flag_raised() or not f16_range.overflow_flag_works()):
                with mapped(src_fd, plan.ref.start + piece.first * src_row, count * src_row) as view:
                    self.overflow.add(plan.ref.name, f16_range.count_overflows(np.frombuffer(view, np.uint16), "BF16"))
            return
        with mapped(src_fd, plan.ref.start + piece.first * src_row, count * src_row) as view:
            self._convert_rows(plan, piece, np.frombuffer(view, dtype=NUMPY_DTYPES[plan.ref.dtype]).reshape(shape))

    def _bf16_to_f16_mapped(self, source: SourceMap, src_offset: int, nbytes: int, dst_offset: int,
                            kernels: Any) -> None:
        """bfloat16 -> float16 a block at a time, read by ggml's kernels straight from the file's mapping into
        this thread's buffer, then ``pwrite``; the piece's pages are released when it is written. Element for
        element the same conversion as :func:`ftwiz.core.export.dtypes.bf16_bits_to_f16`."""
        from ftwiz.core.export.ggml_kernels import bf16_to_f16_at

        require_length(source.fd, src_offset + nbytes)
        step = max(2, READ_BYTES // 2 * 2)  # whole bfloat16 values
        buf = self._buffer(min(nbytes, step) // 2)
        at, view = buf.ctypes.data, memoryview(buf).cast("B")
        for start in range(0, nbytes, step):
            count = min(step, nbytes - start)
            bf16_to_f16_at(source.address + src_offset + start, at, count // 2, kernels)
            write_all(self.dst_fd, view[:count], dst_offset + start)
        source.release(src_offset, nbytes)

    def _bf16_to_f16_read(self, src_fd: int, src_offset: int, nbytes: int, dst_offset: int, kernels: Any) -> None:
        """bfloat16 -> float16 a block at a time: ``preadv`` into this thread's buffer, converted in place by
        ggml's kernels, ``pwrite``. No mapping: mapping and unmapping pieces from two threads of one process
        costs TLB shoot-downs between the cores (mapped 256 KiB blocks -> read 1 MiB blocks measured 0.1-0.15 s
        less wall and CPU per GB with two threads). Element for element the same conversion as
        :func:`ftwiz.core.export.dtypes.bf16_bits_to_f16`."""
        from ftwiz.core.export.ggml_kernels import bf16_to_f16_at

        step = max(2, READ_BYTES // 2 * 2)  # whole bfloat16 values
        buf = self._buffer(min(nbytes, step) // 2)
        at, view = buf.ctypes.data, memoryview(buf).cast("B")
        for start in range(0, nbytes, step):
            count = min(step, nbytes - start)
            got = 0
            while got < count:
                n = os.preadv(src_fd, [view[got:count]], src_offset + start + got)
                if n <= 0:
                    raise FtwizError("a tensor is truncated in its safetensors file",
                                     fix="the model files are incomplete; fetch or save them again")
                got += n
            bf16_to_f16_at(at, at, count // 2, kernels)  # in place: each chunk is staged as float32 first
            write_all(self.dst_fd, view[:count], dst_offset + start)

    def _convert_rows(self, plan: Any, piece: Piece, array) -> None:
        """Convert and write ``array`` (the piece's rows, a view of the mapped source)."""
        import numpy as np
        from ftwiz.core.export.convert import permute_rotate_half
        from ftwiz.core.export.dtypes import as_f32, to_gguf_array
        from ftwiz.core.export.f16_range import count_overflows, watched
        from ftwiz.core.export.q8_range import count_scale_overflows, scale_overflowed, scale_watched

        watch = self.overflow is not None and watched(plan)
        scales = self.overflow is not None and scale_watched(plan)  # Q8_0 from bfloat16/float32: scale beyond f16
        rows = plan.shape[0] if len(plan.shape) > 1 else 1
        count, src_row, dst_row = piece.stop - piece.first, plan.ref.nbytes // rows, plan.nbytes // rows
        part = data = None
        try:
            if plan.permute_heads:
                array = permute_rotate_half(array, plan.permute_heads * count // rows)
            # as (rows, row elements): every conversion works on whole rows (quantization blocks never
            # cross a row), so a block of rows is converted and written while it is still in the CPU cache
            array = array.reshape(count, -1)
            block = max(1, BLOCK_BYTES // max(1, src_row))
            buffer = self._buffer(min(count, block) * array.shape[1])
            for first in range(0, count, block):
                part, src_dtype = array[first: first + block], plan.ref.dtype
                if watch:  # while the block is in cache (here the overflow flag would not survive numpy's casts)
                    self.overflow.add(plan.ref.name, count_overflows(part, src_dtype))
                if plan.add_one:  # Gemma norm: 1 + w, in float32 (1-D tensors are always written as F32)
                    part, src_dtype = as_f32(part, src_dtype) + np.float32(1.0), "F32"
                if plan.via_f16:  # a K-quant export: quantized from the F16 values, as llama.cpp would
                    from ftwiz.core.export.kquant import quantize_via_f16

                    data = quantize_via_f16(part, src_dtype, plan.qtype, out=buffer)
                else:
                    data = to_gguf_array(part, src_dtype, plan.qtype, out=buffer)
                if scales and scale_overflowed(data):  # the written scales first: exact count only past them
                    self.overflow.add(plan.ref.name, count_scale_overflows(part, src_dtype), blocks=True)
                write_all(self.dst_fd, np.ascontiguousarray(data), piece.dst_offset + first * dst_row)
        except BaseException as exc:
            # the traceback keeps this frame and the finished ones below it: drop their views of the mapped
            # source, so the mapping (and its file descriptor) is closed now rather than at garbage collection
            array = part = data = None
            if exc.__traceback__ is not None:
                traceback.clear_frames(exc.__traceback__.tb_next)
            raise


def write_data(path: Path, alignment: int, plans: list[Any], progress: Progress | None = None,
               threads: int | None = None, overflow: Any = None) -> None:
    """Fill the data section of ``path`` (whose header is already written) with every planned tensor;
    ``overflow`` (an :class:`~ftwiz.core.export.f16_range.OverflowLog`) receives the values written as float16
    that became ±inf."""
    header_end = path.stat().st_size
    pieces: list[Piece] = []
    position = header_end + (-header_end % alignment)
    for plan in plans:
        pieces.extend(split(plan, position))
        position += plan.nbytes + (-plan.nbytes % alignment)
    src_fds: dict[Path, int] = {}
    maps: dict[Path, SourceMap] = {}
    dst_fd = os.open(path, os.O_RDWR)
    try:
        _reserve(dst_fd, position, path)
        for plan in plans:
            if plan.ref is not None and plan.ref.file not in src_fds:
                src_fds[plan.ref.file] = os.open(plan.ref.file, os.O_RDONLY)
            if (plan.ref is not None and plan.ref.file not in maps and SourceMap.available()
                    and _plain_bf16_to_f16(plan) is not None):
                with contextlib.suppress(OSError, ValueError):  # a file system that cannot map: read it instead
                    maps[plan.ref.file] = SourceMap(src_fds[plan.ref.file], os.fstat(src_fds[plan.ref.file]).st_size)
        convert = _Converter(src_fds, dst_fd, maps, overflow)
        remaining = {id(plan): 0 for plan in plans}
        for piece in pieces:
            remaining[id(piece.plan)] += 1
        workers = threads or max(1, min(8, os.cpu_count() or 1))
        done = 0
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(convert, piece): piece.plan for piece in pieces}
            try:
                for future in as_completed(futures):
                    future.result()
                    plan = futures[future]
                    remaining[id(plan)] -= 1
                    if remaining[id(plan)] == 0:
                        done += 1
                        if progress:
                            progress(done, len(plans), plan.name)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise FtwizError("the disk filled up while writing the GGUF", where=Location(file=path.parent),
                             fix="free some space or choose another --out") from None
        raise
    finally:
        os.close(dst_fd)
        for source in maps.values():
            source.close()
        for fd in src_fds.values():
            os.close(fd)
