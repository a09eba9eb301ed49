"""``ftwiz merge`` and ``ftwiz export`` as a user runs them: a finished LoRA run in, verified GGUFs out.

Exit codes are part of the contract: 0 ok, 1 a verification or preflight check failed, 2 user error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")


def ftwiz(*args: str, env_dirs: dict[str, Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "FTWIZ_CACHE_DIR": str(env_dirs["cache"]), "FTWIZ_DATA_DIR": str(env_dirs["data"]),
           "FTWIZ_RUNS_DIR": str(env_dirs["runs"]), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ftwiz.tui.launcher_main", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, session_dirs) -> Path:
    """A completed LoRA run directory: recipe, run card pointing at the base, and a peft adapter."""
    import torch
    from ftwiz.core.tiny import build_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = build_tiny_model(tmp_path_factory.mktemp("base"), arch="llama", init_std=0.1)
    run = session_dirs["runs"] / "cli-export-run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.yaml").write_text(f"model_name_or_path: {base}\n")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(base), "method": "lora"}))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)
    peft_model.save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(run / "adapter")
    return run


@pytest.mark.slow
def test_export_run_with_verify(lora_run: Path, session_dirs) -> None:
    result = ftwiz("export", "cli-export-run", "--quant", "F16", "--quant", "Q4_K_M", "--verify",
                   env_dirs=session_dirs)
    assert result.returncode == 0, result.stdout + result.stderr
    f16 = lora_run / "export" / "cli-export-run-F16.gguf"
    q4 = lora_run / "export" / "cli-export-run-Q4_K_M.gguf"
    assert f16.is_file() and q4.is_file()
    assert (lora_run / "merged" / "config.json").is_file()
    assert "pass" in result.stdout and "logits" in result.stdout
    # the tiny model's 64-wide rows are not whole Q4_K blocks: said, as llama.cpp's quantizer warns
    assert "note: Q4_K_M: " in result.stdout and " as Q5_0 instead of Q4_K (rows of 64" in result.stdout
    report = json.loads((f16.parent / (f16.name + ".verify.json")).read_text())
    assert all(c["passed"] for c in report["checks"])
    # `models list` shows the verdict of each verified export
    listed = ftwiz("models", "list", env_dirs=session_dirs)
    assert listed.returncode == 0, listed.stderr
    verdicts = {cells[1]: cells[5] for cells in ([c.strip() for c in line.split("│")]
                                                 for line in listed.stdout.splitlines()) if len(cells) > 6}
    assert verdicts[f16.name] == verdicts[q4.name] == "passed", listed.stdout
    # second export without --overwrite refuses to replace the user's files
    again = ftwiz("export", "cli-export-run", "--quant", "F16", env_dirs=session_dirs)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_merge_adapter_folder_cli(lora_run: Path, tmp_path: Path, session_dirs) -> None:
    out = tmp_path / "merged"
    result = ftwiz("merge", str(lora_run / "adapter"), "--out", str(out), env_dirs=session_dirs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    missing_out = ftwiz("merge", str(lora_run / "adapter"), env_dirs=session_dirs)
    assert missing_out.returncode == 2 and "--out" in missing_out.stderr


def test_check_and_adapter_only(lora_run: Path, tmp_path: Path, session_dirs) -> None:
    check = ftwiz("export", "--check", "cli-export-run", env_dirs=session_dirs)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "exportable" in check.stdout and "llama" in check.stdout
    adapter = ftwiz("export", "cli-export-run", "--adapter-only", "--out", str(tmp_path / "a.gguf"),
                    env_dirs=session_dirs)
    assert adapter.returncode == 0, adapter.stdout + adapter.stderr
    assert (tmp_path / "a.gguf").read_bytes()[:4] == b"GGUF"


def test_bad_input_exits_2_with_a_fix(tmp_path: Path, session_dirs) -> None:
    result = ftwiz("export", str(tmp_path / "no-such-model"), env_dirs=session_dirs)
    assert result.returncode == 2
    assert "error" in result.stderr and "fix" in result.stderr
    bad_quant = ftwiz("export", "cli-export-run", "--quant", "Q3_XYZ", env_dirs=session_dirs)
    assert bad_quant.returncode == 2 and "Q3_XYZ" in bad_quant.stderr


def test_failed_verification_exits_1(tmp_path: Path, monkeypatch) -> None:
    """In-process so the converter can be broken on purpose (Q/K permutation off)."""
    from ftwiz.core.cli import main
    from ftwiz.core.export import arch
    from ftwiz.core.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "m", arch="llama", init_std=0.1)
    monkeypatch.setitem(arch.ARCHITECTURES, "LlamaForCausalLM", arch.ArchInfo("llama", permute_qk=False))
    code = main(["export", str(model), "--quant", "F16", "--verify", "--out", str(tmp_path / "x.gguf")])
    assert code == 1
