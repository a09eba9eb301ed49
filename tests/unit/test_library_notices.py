"""Notices of the new library releases that say nothing a user can act on are kept off ``ftwiz train``'s output
(core/cli/library_notices.py); each other warning of the same library still shows. Oracle: the stderr a user reads
from a real run in a fresh process (each library says its notice once per process).

- bitsandbytes 0.50, on a CPU with AVX512-BF16 (AMD Zen 4, Intel Sapphire Rapids), began every QLoRA train, eval
  and demo with "Failed to load CPU gemm_4bit_forward from kernels-community ... `pip install kernels`": advice
  about a 4-bit inference kernel ftwiz never runs on the CPU.
- transformers 5 printed "[transformers] mtime may not be reliable on this filesystem, falling back to numerical
  ordering" when a small model saved checkpoints less than a second apart: a worry about the user's disk for
  checkpoints that transformers then orders by step, correctly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def _train(tmp_path: Path, model: Path, run_name: str, **fields: object) -> subprocess.CompletedProcess[str]:
    """``ftwiz train`` of 8 tiny records in a fresh process, with the environment a user has (the test session's
    TRANSFORMERS_VERBOSITY=error would hide transformers' notices)."""
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"answer {i}."}) + "\n"
                            for i in range(8)), encoding="utf-8")
    recipe = tmp_path / f"{run_name}.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(model), "dataset": [str(data)], "lora_rank": 4,
                                      "cutoff_len": 64, "per_device_train_batch_size": 2,
                                      "gradient_accumulation_steps": 1, "val_size": 0.0, **fields}), encoding="utf-8")
    code = "import sys; from ftwiz.core.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "train", str(recipe), "--run-name", run_name],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"})
    assert done.returncode == 0, done.stderr
    return done


def _has_avx512bf16() -> bool:
    functional = pytest.importorskip("bitsandbytes.functional")
    return bool(getattr(functional, "has_avx512bf16", lambda: False)())


def test_cpu_qlora_train_does_not_tell_the_user_to_install_kernels(tmp_path: Path, tiny_qwen2: Path) -> None:
    if not _has_avx512bf16():
        pytest.skip("bitsandbytes says this only on a CPU with AVX512-BF16")
    done = _train(tmp_path, tiny_qwen2, "kernel-notice", finetuning_type="qlora", max_steps=1)
    assert "Training completed" in done.stdout + done.stderr
    assert "kernels" not in done.stderr, done.stderr


def test_quick_checkpoints_do_not_say_the_filesystem_is_unreliable(tmp_path: Path, tiny_qwen2: Path,
                                                                   ftwiz_env: dict[str, Path]) -> None:
    done = _train(tmp_path, tiny_qwen2, "quick-saves", finetuning_type="lora", max_steps=4, save_steps=1,
                  save_total_limit=2)
    assert "mtime" not in done.stderr and "not be reliable" not in done.stderr, done.stderr
    kept = sorted(p.name for p in (ftwiz_env["runs"] / "quick-saves" / "checkpoints").iterdir())
    assert kept == ["checkpoint-3", "checkpoint-4"], kept


def test_a_config_without_a_pad_id_does_not_say_the_special_tokens_changed(tmp_path: Path, tiny_qwen2: Path) -> None:
    """Qwen2.5 and Qwen3 configs name no pad id; every train of them said 'The tokenizer has new PAD/BOS/EOS tokens
    that differ from the model config ... Updated tokens: {'pad_token_id': ...}' though nothing it generates or
    stops on changed."""
    import shutil

    model = Path(shutil.copytree(tiny_qwen2, tmp_path / "no-pad-id"))
    for name in ("config.json", "generation_config.json"):
        if (model / name).is_file():
            config = json.loads((model / name).read_text())
            config.pop("pad_token_id", None)
            (model / name).write_text(json.dumps(config))
    done = _train(tmp_path, model, "no-pad-id", finetuning_type="lora", max_steps=1)
    assert "Training completed" in done.stdout + done.stderr
    assert "PAD/BOS/EOS" not in done.stderr, done.stderr


def test_a_changed_end_of_sequence_id_is_still_said() -> None:
    """Only the pad-only notice is dropped: a tokenizer whose EOS differs from the config's changes where
    generation stops, which the user should hear about."""
    import logging

    from ftwiz.core.cli.library_notices import quiet_library_notices

    quiet_library_notices()
    logger = logging.getLogger("transformers.trainer_utils")
    notice = ("The tokenizer has new PAD/BOS/EOS tokens that differ from the model config and generation config. The "
              "model config and generation config were aligned accordingly, being updated with the tokenizer's values. "
              "Updated tokens: {}.")
    said = [f.filter(logging.LogRecord(logger.name, logging.WARNING, __file__, 1, notice.replace("{}", tokens), None, None))
            for tokens in ("{'pad_token_id': 7}", "{'eos_token_id': 2, 'pad_token_id': 7}") for f in logger.filters]
    assert said == [False, True]
