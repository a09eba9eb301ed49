"""``ftwiz train`` of a QLoRA recipe on a CPU with AVX512-BF16 (AMD Zen 4, Intel Sapphire Rapids) began with
bitsandbytes 0.50's "Failed to load CPU gemm_4bit_forward from kernels-community ... `pip install kernels`":
advice about a 4-bit inference kernel ftwiz never runs on the CPU, shown above every train, eval and demo.
Oracle: what the user reads on stderr of a real run in a fresh process (bitsandbytes says it once, at import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

functional = pytest.importorskip("bitsandbytes.functional")


@pytest.mark.skipif(not getattr(functional, "has_avx512bf16", lambda: False)(),
                    reason="bitsandbytes says this only on a CPU with AVX512-BF16")
def test_cpu_qlora_train_does_not_tell_the_user_to_install_kernels(tmp_path: Path, tiny_qwen2: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"answer {i}."}) + "\n"
                            for i in range(8)), encoding="utf-8")
    recipe = tmp_path / "q.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(tiny_qwen2), "dataset": [str(data)],
                                      "finetuning_type": "qlora", "lora_rank": 4, "cutoff_len": 64,
                                      "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                                      "val_size": 0.0, "max_steps": 1}), encoding="utf-8")
    code = "import sys; from ftwiz.core.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "train", str(recipe), "--run-name", "kernel-notice"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "Training completed" in done.stdout + done.stderr
    assert "kernels" not in done.stderr, done.stderr
