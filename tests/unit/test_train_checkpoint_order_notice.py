"""``ftwiz train`` of a small model that saves checkpoints less than a second apart printed transformers 5's
"[transformers] mtime may not be reliable on this filesystem, falling back to numerical ordering" among its
progress lines: a worry about the user's disk for what is only checkpoints written quickly, which transformers then
orders by step, correctly. Oracle: the stderr a user reads from a real run in a fresh process (transformers says
it once per process), and the checkpoints kept being the newest by step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def test_quick_checkpoints_do_not_say_the_filesystem_is_unreliable(tmp_path: Path, tiny_qwen2: Path,
                                                                   ftwiz_env: dict[str, Path]) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"answer {i}."}) + "\n"
                            for i in range(8)), encoding="utf-8")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(tiny_qwen2), "dataset": [str(data)],
                                      "finetuning_type": "lora", "lora_rank": 4, "cutoff_len": 64,
                                      "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                                      "val_size": 0.0, "max_steps": 4, "save_steps": 1, "save_total_limit": 2}),
                      encoding="utf-8")
    code = "import sys; from ftwiz.core.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "train", str(recipe), "--run-name", "quick-saves"],
                          capture_output=True, text=True, timeout=300,
                          # as a user runs it: the test session's TRANSFORMERS_VERBOSITY=error would hide the notice
                          env={k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"})
    assert done.returncode == 0, done.stderr
    assert "mtime" not in done.stderr and "not be reliable" not in done.stderr, done.stderr
    kept = sorted(p.name for p in (ftwiz_env["runs"] / "quick-saves" / "checkpoints").iterdir())
    assert kept == ["checkpoint-3", "checkpoint-4"], kept
