"""A first export's vocabulary read ahead in a forked child: the same GGUF as an export that read it itself,
whatever the child does (fills the cache, fails, hangs).

Oracle: the file ``convert_to_gguf`` writes with the child switched off (FTWIZ_NO_FORK) and no cache.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux" or (os.cpu_count() or 1) < 2,
                                reason="the vocabulary is read ahead only on Linux with two cores or more")


def _export(model: Path, out: Path) -> bytes:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(model, out, "F16").read_bytes()


@pytest.fixture
def oracle(tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("FTWIZ_NO_FORK", "1")
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "oracle-cache"))
    expected = _export(tiny_qwen2, tmp_path / "oracle.gguf")
    monkeypatch.delenv("FTWIZ_NO_FORK")
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    return expected


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """pids of the processes that read the vocabulary themselves (the child's reads stay in the child)."""
    from ftwiz.core.export import vocab_cache

    built: list[int] = []
    real = vocab_cache.build
    monkeypatch.setattr(vocab_cache, "build", lambda *a, **k: built.append(os.getpid()) or real(*a, **k))
    return built


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # nothing to reap: every child was waited for
        return True
    return False


def test_the_child_fills_the_cache_and_the_export_reads_it_from_there(tiny_qwen2: Path, tmp_path: Path,
                                                                     oracle: bytes, monkeypatch) -> None:
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab_cache import cache_key, lookup

    built = _count_builds(monkeypatch)
    assert _export(tiny_qwen2, tmp_path / "first.gguf") == oracle
    assert built == []  # the export itself never read tokenizer.json's vocabulary: the child did
    assert lookup(cache_key(tiny_qwen2, model_params(tiny_qwen2).vocab_size)) is not None
    assert _no_children_left()


def test_a_child_that_cannot_write_the_cache_leaves_the_read_to_the_export(tiny_qwen2: Path, tmp_path: Path,
                                                                          oracle: bytes, monkeypatch) -> None:
    from ftwiz.core.export import vocab_cache

    real_store = vocab_cache._store
    parent = os.getpid()
    # in the child only: its cache write fails (as a full or read-only disk would)
    monkeypatch.setattr(vocab_cache, "_store", lambda *a: None if os.getpid() != parent else real_store(*a))
    built = _count_builds(monkeypatch)
    assert _export(tiny_qwen2, tmp_path / "first.gguf") == oracle
    assert built == [parent]  # read by the export itself
    assert _no_children_left()


def test_a_hanging_child_is_stopped_and_the_export_reads_the_vocabulary_itself(tiny_qwen2: Path, tmp_path: Path,
                                                                              oracle: bytes, monkeypatch) -> None:
    from ftwiz.core.export import vocab_ahead, vocab_cache

    parent = os.getpid()
    real_read = vocab_cache.read_vocab

    def read_vocab(*args, **kwargs):
        if os.getpid() != parent:
            time.sleep(60)  # the child hangs
        return real_read(*args, **kwargs)

    monkeypatch.setattr(vocab_cache, "read_vocab", read_vocab)
    monkeypatch.setattr(vocab_ahead, "WAIT_S", 0.3)
    started = time.monotonic()
    assert _export(tiny_qwen2, tmp_path / "first.gguf") == oracle
    assert time.monotonic() - started < 30
    assert _no_children_left()


def test_no_child_when_the_cache_holds_the_vocabulary(tiny_qwen2: Path, tmp_path: Path, oracle: bytes,
                                                     monkeypatch) -> None:
    from ftwiz.core.export import vocab_ahead

    assert _export(tiny_qwen2, tmp_path / "first.gguf") == oracle
    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(vocab_ahead.os, "fork", lambda: forks.append(1) or real_fork())
    assert _export(tiny_qwen2, tmp_path / "second.gguf") == oracle
    assert forks == []


def test_value_type_numbers_are_gguf_pys() -> None:
    import gguf
    from ftwiz.core.export.vocab_cache import GGUF_INT32, GGUF_STRING

    assert (int(gguf.GGUFValueType.STRING), int(gguf.GGUFValueType.INT32)) == (GGUF_STRING, GGUF_INT32)
