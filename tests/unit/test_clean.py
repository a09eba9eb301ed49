"""Leftovers of killed jobs: the next write to the same folder sweeps them, ``ftwiz clean`` lists and removes
them with sizes, and a partial that a live process is still writing is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ftwiz.core.atomic import atomic_path, find_partials, write_text_atomic
from ftwiz.core.cli import main as cli_main

WRITER = """
import os, signal, sys
from ftwiz.core.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * int(sys.argv[2]))
    if sys.argv[3] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_writer(final: Path, size: int) -> None:
    """A process killed by SIGKILL while writing ``final``: what a killed export leaves behind."""
    done = subprocess.run([sys.executable, "-c", WRITER, str(final), str(size), "kill"], timeout=60)
    assert done.returncode == -signal.SIGKILL


def paused_writer(final: Path, size: int, marker: Path) -> subprocess.Popen:
    env = {**os.environ, "FTWIZ_TEST_PAUSE_AT": f"write:{final.name}", "FTWIZ_TEST_PAUSE_FILE": str(marker)}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(final), str(size), "keep"], env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None and time.monotonic() < deadline, "writer never reached its pause point"
        time.sleep(0.02)
    return child


def test_a_killed_write_leaves_no_final_file_and_the_next_write_sweeps_its_partial(tmp_path: Path) -> None:
    final = tmp_path / "model.gguf"
    killed_writer(final, 300_000)
    assert not final.exists()
    [leftover] = find_partials(tmp_path)
    assert leftover.path.name.startswith(".model.gguf.") and leftover.size == 300_000 and not leftover.in_use
    write_text_atomic(tmp_path / "other.txt", "hello")  # any later write into the same folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_clean_dry_run_lists_sizes_then_clean_removes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    killed_writer(tmp_path / "a" / "x-F16.gguf", 3 * 2**20)
    killed_writer(tmp_path / "b" / "stats.json", 2048)
    assert cli_main(["clean", "--dry-run", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "3.0 MiB" in out and "2.0 KiB" in out and ".x-F16.gguf." in out
    assert "would free 3.0 MiB" in out
    assert len(find_partials(tmp_path)) == 2  # a dry run removes nothing
    assert cli_main(["clean", str(tmp_path)]) == 0
    assert "freed 3.0 MiB" in capsys.readouterr().out
    assert find_partials(tmp_path) == []
    assert cli_main(["clean", str(tmp_path)]) == 0
    assert "no leftovers" in capsys.readouterr().out


def test_a_partial_a_running_job_writes_is_never_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    final = tmp_path / "merged.safetensors"
    child = paused_writer(final, 4096, tmp_path / "paused")
    try:
        write_text_atomic(tmp_path / "neighbour.txt", "x")  # sweeps the folder, must spare the live partial
        assert cli_main(["clean", str(tmp_path)]) == 0
        assert "in use" in capsys.readouterr().out
        [live] = find_partials(tmp_path)
        assert live.in_use and live.size == 4096
    finally:
        (tmp_path / "paused.go").touch()  # let it finish
        assert child.wait(timeout=60) == 0
    assert final.read_bytes() == b"x" * 4096 and find_partials(tmp_path) == []


def test_clean_of_a_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["clean", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in " ".join(capsys.readouterr().err.split())


def test_a_failed_write_removes_its_partial_and_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "report.json"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert final.read_text() == "old" and find_partials(tmp_path) == []


def test_clean_without_a_path_looks_in_the_runs_folder(session_dirs: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    export = session_dirs["runs"] / "clean-default" / "export"
    killed_writer(export / "clean-default-Q8_0.gguf", 5000)
    assert cli_main(["clean", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "would remove" in out and ".clean-default-Q8_0.gguf." in out and "4.9 KiB" in out
    assert cli_main(["clean"]) == 0
    assert find_partials(export) == []
