"""`distributed_train`: one run name for every rank, a config accelerate loads, and a clear error without GPUs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from ftwiz.core.errors import FtwizError
from ftwiz.core.scale.launch import decoder_layer_class, distributed_train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recipe_file(tiny_qwen2: Path, tmp_path: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(REPO / "recipes" / "demo" / "demo.jsonl")],
        "finetuning_type": "lora", "max_steps": 4, "per_device_train_batch_size": 2}), encoding="utf-8")
    return path


def test_dry_run_fixes_the_run_name_for_all_ranks(recipe_file: Path) -> None:
    said: list[str] = []
    assert distributed_train(recipe_file, 2, cpu=True, dry_run=True, say=said.append) == 0
    command = said[-1]
    assert command.startswith("$ env CUDA_VISIBLE_DEVICES= ") and "--num_processes 2" in command
    assert f"-m ftwiz.tui.launcher_main train {recipe_file.resolve()} --run-name " in command
    config_path = Path(command.split("--config_file ")[1].split()[0])
    assert ClusterConfig.from_yaml_file(config_path).num_processes == 2
    assert any(line.startswith("strategy: ddp") for line in said)


def test_asking_for_more_gpus_than_present_is_a_user_error(recipe_file: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    detect_module = importlib.import_module("ftwiz.core.hardware.detect")
    report = detect_module.detect(probe_backends=False)
    monkeypatch.setattr(detect_module, "detect", lambda **_: report.model_copy(update={"gpus": []}))
    with pytest.raises(FtwizError, match="more GPUs than this machine has"):
        distributed_train(recipe_file, 2, dry_run=True, say=lambda _line: None)


def test_fsdp_wraps_the_real_decoder_layer_class(tiny_qwen2: Path, tiny_llama: Path) -> None:
    for model, module in ((tiny_qwen2, "qwen2"), (tiny_llama, "llama")):
        name = decoder_layer_class(model)
        assert hasattr(importlib.import_module(f"transformers.models.{module}.modeling_{module}"), name)


def test_max_steps_reaches_every_rank(recipe_file: Path, ftwiz_env: dict[str, Path]) -> None:
    """`ftwiz train R --gpus 2 --max-steps 2` trained the recipe's 4 steps: the launched ranks were given the run
    name alone, so the flag was dropped without a word. Oracle: the steps the finished run records."""
    import json

    from ftwiz.core.cli import main

    assert main(["train", str(recipe_file), "--gpus", "2", "--cpu-procs", "--max-steps", "2",
                 "--run-name", "ranks-max-steps"]) == 0
    status = json.loads((ftwiz_env["runs"] / "ranks-max-steps" / "status.json").read_text(encoding="utf-8"))
    assert (status["state"], status["step"]) == ("completed", 2), status
