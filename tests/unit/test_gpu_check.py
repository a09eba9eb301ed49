"""bench/gpu_check.sh without a GPU: its dry run validates the inputs; a missing wheel is named with the fix.

The GPU part itself (probes, short trainings, NVML reading, real OOM back-off) needs a CUDA machine and is
not run here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.sh"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # imports transformers and the planner in a child: 15-70 s on a busy 2-core box
def test_dry_run_validates_configs_and_lists_every_run_with_its_estimate(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--wheels", str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    for model, method in (("qwen2.5-0.5b", "qlora"), ("llama-3.2-1b", "full"), ("llama-3.1-8b", "lora")):
        assert any(line.startswith(f"would run: {model} {method}") and "GiB)" in line
                   for line in done.stdout.splitlines()), done.stdout
    assert "NVML seam" in done.stdout and "OOM back-off" in done.stdout


def test_a_wheels_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--wheels", str(tmp_path / "nope")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode != 0 and "no such folder" in done.stderr


def test_missing_requirements_are_named_with_the_download_command(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_check = _module()
    (tmp_path / "llama_cpp_python-0.3.9-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    assert "llama-cpp-python" in gpu_check.wheel_names(tmp_path)  # wheel file names use underscores
    assert gpu_check.missing_requirements(["torch", "llama-cpp-python", "textual"], {"torch"},
                                          gpu_check.wheel_names(tmp_path)) == ["textual"]
    monkeypatch.setattr(gpu_check, "installed_names", lambda: {"torch"})
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--dry-run", "--wheels", str(tmp_path)])
    with pytest.raises(SystemExit) as stop:
        gpu_check.main()
    message = str(stop.value)
    assert "missing requirements" in message and "transformers" in message and "llama-cpp-python" not in message
    assert "pip download -d WHEELS" in message
