"""Hugging Face tensor names -> GGUF tensor names, from gguf-py's ``TensorNameMap`` built for one block.

``gguf.get_tensor_name_map(arch, n_blocks)`` spells out every name of every block: 16 ms for Qwen2.5-0.5B's
24 blocks on this machine, 0.1 s for an 80-block 70B, and that inside a one-second export. Every block maps
alike (gguf-py's templates hold ``{bid}``), so the map is built for block 0 and a block's name is looked up with
its block number replaced by 0, then given its number back. A name whose number is not a block of the model
(an extra layer) or that block 0 does not map goes to the full map, built only then, so the answers are the
full map's (tests/unit/test_export_tensor_names.py compares them for every architecture ftwiz exports).
"""

from __future__ import annotations

import re
from typing import Any

_BLOCK = re.compile(r"\.(\d+)\.")  # the first ".N." of a name: its block number in every layout gguf-py maps


class BlockNameMap:
    """``get_name(hf_name, try_suffixes)`` as ``gguf.TensorNameMap`` answers it, for ``n_blocks`` blocks."""

    def __init__(self, arch: Any, n_blocks: int) -> None:
        import gguf

        self.arch, self.n_blocks = arch, n_blocks
        self.block0 = gguf.get_tensor_name_map(arch, 1)
        self._full: Any = None

    def full(self) -> Any:
        if self._full is None:
            import gguf

            self._full = gguf.get_tensor_name_map(self.arch, self.n_blocks)
        return self._full

    def get_name(self, key: str, try_suffixes: tuple[str, ...] = ()) -> str | None:
        found = _BLOCK.search(key)
        if found is None:
            return self.block0.get_name(key, try_suffixes=try_suffixes) or self.full().get_name(
                key, try_suffixes=try_suffixes)
        block = int(found.group(1))
        if block < self.n_blocks and found.group(1) == str(block):  # "07" is no block number gguf-py spells
            as_zero = f"{key[:found.start()]}.0.{key[found.end():]}"
            name = self.block0.get_name(as_zero, try_suffixes=try_suffixes)
            if name is not None and name.startswith("blk.0."):
                return f"blk.{block}.{name[len('blk.0.'):]}"
        return self.full().get_name(key, try_suffixes=try_suffixes)
