"""A model saved by another user (save_pretrained writes safetensors with mode 0600) cannot be opened by the
one who exports or merges it: ftwiz names the file and the fix instead of a PermissionError traceback.

Run as root (CI containers), the files' mode alone would not stop the reads, so the CLI runs without the
capabilities that let root ignore it (``setpriv``), which is what a normal user has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from bad_input_cli import CLI, one_line


def _as_plain_user(*args: str) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file modes cannot be enforced")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*prefix, *CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def _refused(result: subprocess.CompletedProcess[str], file: Path) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    text = one_line(result.stderr)
    assert f"{file}: permission denied" in text and "chmod" in text, text
    return text


def test_export_and_merge_name_an_unreadable_file(tiny_llama: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = shutil.copytree(tiny_llama, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.chmod(0)
    _refused(_as_plain_user("export", str(model), "--quant", "F16", "--out", str(tmp_path / "m.gguf")), weights)
    _refused(_as_plain_user("export", str(model), "--check"), weights)
    assert not (tmp_path / "m.gguf").exists()

    weights.chmod(0o644)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
                                LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    peft_model.save_pretrained(tmp_path / "adapter")
    adapter_weights = tmp_path / "adapter" / "adapter_model.safetensors"
    adapter_weights.chmod(0)
    _refused(_as_plain_user("merge", str(tmp_path / "adapter"), "--base", str(model), "--out",
                            str(tmp_path / "merged")), adapter_weights)
    assert not (tmp_path / "merged").exists()
