"""Finished outputs get the mode a plain write would give them, not mkstemp's private 0600.

A GGUF written 0600 cannot be read by an Ollama or llama.cpp server running as another user (Ollama's Linux
service runs as its own `ollama` user), so `ftwiz register` would fail far from the cause.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ftwiz.core.atomic import atomic_dir, atomic_path, write_text_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_folders_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    with atomic_path(tmp_path / "model.gguf") as tmp:
        tmp.write_bytes(b"GGUF")
    assert _mode(tmp_path / "model.gguf") == 0o644  # as `open(..., "w")` would create it
    write_text_atomic(tmp_path / "model.gguf.verify.json", "{}")
    assert _mode(tmp_path / "model.gguf.verify.json") == 0o644
    with atomic_dir(tmp_path / "merged") as tmp:
        (tmp / "config.json").write_text("{}")
    assert _mode(tmp_path / "merged") == 0o755


def test_a_private_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with atomic_path(tmp_path / "secret.gguf") as tmp:
            tmp.write_bytes(b"GGUF")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "secret.gguf") == 0o600
