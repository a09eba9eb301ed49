"""The CLI as a subprocess, for the bad-input tests (tests/unit/test_bad_input_*.py): every refusal is exit
status 2 with an error and no Python traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "ftwiz.tui.launcher_main"]


def ftwiz(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def one_line(text: str) -> str:
    return " ".join(text.split())


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The error a user reads, after checking it is an error and no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return one_line(result.stderr)


def gguf_with_tensors(path: Path) -> Path:
    """A small GGUF with 64 KiB of tensor data (no vocabulary: enough for the checks before any loading)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(128)
    writer.add_tensor("token_embd.weight", np.ones((64, 128), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(128, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
