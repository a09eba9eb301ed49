"""`ftwiz train` fills the export's vocabulary cache once training completes: the first `ftwiz export RUN`
(merge, then convert) reads it instead of parsing tokenizer.json, and writes the same GGUF as an export that
parsed it (the oracle: the run exported again with an empty cache). Ctrl-C while the cache is filled ends the
command as the completed training it is."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.recipe import parse_recipe

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def _recipe_file(model: Path, tmp_path: Path, run_name: str, **fields) -> Path:
    recipe = parse_recipe({"model_name_or_path": str(model), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
                           "max_samples": 16, "cutoff_len": 64, "max_steps": 2, "per_device_train_batch_size": 4,
                           "gradient_accumulation_steps": 1, "lora_rank": 4, "save_steps": 2, "eval_steps": 100,
                           "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.0, "run_name": run_name}
                          | fields)
    path = tmp_path / f"{run_name}.yaml"
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    return path


@pytest.mark.parametrize("method", ["lora", "full"])
def test_the_first_export_after_training_reads_the_cached_vocabulary(tiny_qwen2: Path, tmp_path: Path, method: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.export import vocab_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(cache))  # empty: only the training can fill it
    run = f"cache-{method}"
    assert cli_main(["train", str(_recipe_file(tiny_qwen2, tmp_path, run, finetuning_type=method))]) == 0

    parsed: list[Path] = []
    real_build = vocab_cache.build
    monkeypatch.setattr(vocab_cache, "build", lambda *a, **k: parsed.append(a[1]) or real_build(*a, **k))
    warm = tmp_path / "warm.gguf"
    assert cli_main(["export", run, "--quant", "F16", "--out", str(warm)]) == 0
    assert parsed == []  # the export read the vocabulary the training cached

    shutil.rmtree(cache)
    cold = tmp_path / "cold.gguf"
    assert cli_main(["export", run, "--quant", "F16", "--out", str(cold)]) == 0
    assert len(parsed) == 1  # the oracle parsed tokenizer.json itself
    assert warm.read_bytes() == cold.read_bytes()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_while_the_cache_is_filled_ends_a_completed_training_with_exit_0(
        tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        signum: int) -> None:
    """The training said 'next: ftwiz export' and the prompt had not come back yet: Ctrl-C (pressed twice, as a
    user waiting does) said 'saving a checkpoint ... then stopping' and exited 130, failing `train && export`.
    A parent's SIGTERM to the finished child said 'saving a checkpoint' too."""
    from ftwiz.core.export import vocab_warm

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))

    def interrupted(*_args, **_kwargs) -> bool:
        for _ in range(2):
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # Python runs the handler here
        raise AssertionError("Ctrl-C did not stop the cache fill")

    monkeypatch.setattr(vocab_warm, "warm_vocab_cache", interrupted)
    capsys.readouterr()
    previous = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}  # the CLI installs its own
    try:
        assert cli_main(["train", str(_recipe_file(tiny_qwen2, tmp_path, f"cache-signal-{signum}"))]) == 0
    finally:
        for n, handler in previous.items():
            signal.signal(n, handler)
    err = " ".join(capsys.readouterr().err.split())
    assert "Training completed" in err and "next: ftwiz export" in err
    assert "checkpoint" not in err.split("next: ftwiz export")[1] and "stopped" not in err


def test_only_the_main_process_of_a_distributed_training_fills_the_cache(tiny_qwen2: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `--gpus N` every rank runs `ftwiz train`: rank 0 fills the cache, the others would only repeat it."""
    from ftwiz.core.export import vocab_warm
    from ftwiz.core.train import runner
    from ftwiz.core.train.result import TrainResult

    filled: list[Path] = []
    monkeypatch.setattr(vocab_warm, "warm_vocab_cache", lambda folder, *_a: filled.append(Path(folder)) or True)
    adapter = tmp_path / "runs" / "ranked" / "adapter"
    monkeypatch.setattr(runner, "train", lambda *a, **k: TrainResult(adapter.parent, "completed", adapter, {}))
    recipe = str(_recipe_file(tiny_qwen2, tmp_path, "ranked"))
    (adapter).mkdir(parents=True)
    (adapter / "config.json").write_text("{}")
    monkeypatch.setenv("RANK", "1")
    assert cli_main(["train", recipe]) == 0
    assert filled == []
    monkeypatch.setenv("RANK", "0")
    assert cli_main(["train", recipe]) == 0
    assert filled == [adapter]


def test_ftwiz_merge_of_an_adapter_from_elsewhere_leaves_its_first_export_warm(
        tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter trained by another tool reaches ftwiz with no cached vocabulary: `ftwiz merge ADAPTER --out DIR`
    fills it, so `ftwiz export DIR` does not parse tokenizer.json, and writes what an export that parsed it does."""
    from ftwiz.core.export import vocab_cache
    from ftwiz.core.rundir import RunDir

    cache = tmp_path / "cache"
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(cache))
    assert cli_main(["train", str(_recipe_file(tiny_qwen2, tmp_path, "elsewhere"))]) == 0
    shutil.rmtree(cache)  # as if trained elsewhere: nothing cached for this tokenizer
    merged = tmp_path / "merged [v2]"
    adapter = RunDir.resolve("elsewhere").root / "adapter"
    assert cli_main(["merge", str(adapter), "--out", str(merged)]) == 0

    parsed: list[Path] = []
    real_build = vocab_cache.build
    monkeypatch.setattr(vocab_cache, "build", lambda *a, **k: parsed.append(a[1]) or real_build(*a, **k))
    warm = tmp_path / "warm.gguf"
    assert cli_main(["export", str(merged), "--quant", "F16", "--out", str(warm)]) == 0
    assert parsed == []  # the merge cached the vocabulary
    shutil.rmtree(cache)
    cold = tmp_path / "cold.gguf"
    assert cli_main(["export", str(merged), "--quant", "F16", "--out", str(cold)]) == 0
    assert len(parsed) == 1 and warm.read_bytes() == cold.read_bytes()
