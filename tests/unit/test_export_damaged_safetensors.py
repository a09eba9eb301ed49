"""Damaged or fake ``model.safetensors`` files: export names the file and the fault instead of a traceback
(MemoryError on a Git LFS pointer) or silently converting another tensor's bytes.

Oracle: safetensors' own loader (``safe_open``) refuses every file these tests damage, and accepts the
intact one that ``read_header`` reads too.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.tensors import read_header
from safetensors import safe_open
from safetensors.numpy import save_file


def _write(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _model(tmp_path: Path) -> tuple[dict, bytes]:
    """A two-tensor safetensors file's parsed header and data section."""
    file = tmp_path / "ok.safetensors"
    save_file({"a": np.ones((4, 8), np.float32), "b": np.zeros((2, 8), np.float16)}, str(file))
    blob = file.read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + size]), blob[8 + size:]


def _refused_by_safetensors(path: Path) -> bool:
    try:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                handle.get_tensor(key)
    except Exception:  # noqa: BLE001 - any refusal counts: the oracle only has to say "not loadable"
        return True
    return False


@pytest.mark.parametrize("content, words", [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 281336\n", "git lfs pull"),
    (b"<!DOCTYPE html><html><body>429 Too Many Requests</body></html>", "not a safetensors file"),
])
def test_pointer_or_error_page_is_named_not_a_memory_error(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    assert _refused_by_safetensors(path)
    with pytest.raises(FtwizError) as err:
        read_header(path)
    text = str(err.value) + " " + (err.value.fix or "")
    assert words in text.lower() or words in text
    assert "model.safetensors" in text


def test_shape_bigger_than_its_bytes_is_refused(tmp_path: Path) -> None:
    header, data = _model(tmp_path)
    assert read_header(_write(tmp_path / "intact.safetensors", header, data))[0]  # the intact file reads
    header["a"]["shape"] = [8, 8]  # twice the bytes its data_offsets span: would read into tensor b
    path = _write(tmp_path / "model.safetensors", header, data)
    assert _refused_by_safetensors(path)
    with pytest.raises(FtwizError, match=r"tensor a is F32 \[8, 8\] \(256 bytes\) but its data_offsets span 128"):
        read_header(path)


def test_overlapping_offsets_and_bad_header_length_are_refused(tmp_path: Path) -> None:
    header, data = _model(tmp_path)
    end_a = header["a"]["data_offsets"][1]
    header["b"]["data_offsets"] = [end_a - 16, end_a - 16 + 32]
    path = _write(tmp_path / "model.safetensors", header, data)
    assert _refused_by_safetensors(path)
    with pytest.raises(FtwizError, match="overlap"):
        read_header(path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:40])  # the header's length survives, the header does not
    assert _refused_by_safetensors(cut)
    with pytest.raises(FtwizError, match="truncated"):
        read_header(cut)
