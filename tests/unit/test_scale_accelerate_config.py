"""Accelerate configs chosen from the plan load in accelerate and use only keys its launcher knows."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DistributedType
from ftwiz.core.errors import FtwizError
from ftwiz.core.scale.accelerate_config import (
    ScaleInput,
    choose_strategy,
    launch_command,
    sharded_bytes,
    write_accelerate_config,
)

GIB = 2**30
# A full fine-tune of a ~7B model in bf16: 14 GiB weights, 14 gradients, 56 optimizer, 6 activations.
FULL_7B_PARTS = {"weights": 14 * GIB, "gradients": 14 * GIB, "optimizer_states": 56 * GIB, "activations": 6 * GIB}


def _load(inp: ScaleInput, tmp_path: Path) -> ClusterConfig:
    path = write_accelerate_config(inp, tmp_path / "accelerate.yaml")
    return ClusterConfig.from_yaml_file(path)


def _launcher_dests() -> set[str]:
    return {action.dest for action in launch_command_parser()._actions}


def test_lora_that_fits_one_gpu_gets_ddp(tmp_path: Path) -> None:
    config = _load(ScaleInput(method="lora", n_gpus=4, fits_one_gpu=True, dtype="bf16"), tmp_path)
    assert config.distributed_type == DistributedType.MULTI_GPU
    assert config.num_processes == 4 and config.mixed_precision == "bf16"
    assert not config.fsdp_config and not config.deepspeed_config


def test_full_fine_tune_gets_fsdp_and_offload_only_when_a_share_does_not_fit(tmp_path: Path) -> None:
    roomy = ScaleInput(method="full", n_gpus=8, fits_one_gpu=False, gpu_bytes=80 * GIB, parts=FULL_7B_PARTS,
                       layer_cls="Qwen2DecoderLayer")
    config = _load(roomy, tmp_path)
    assert config.distributed_type == DistributedType.FSDP
    assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "Qwen2DecoderLayer"
    assert config.fsdp_config["fsdp_offload_params"] is False
    assert sharded_bytes(roomy) == (84 * GIB) // 8 + 6 * GIB  # activations are never sharded

    tight = ScaleInput(method="full", n_gpus=2, fits_one_gpu=False, gpu_bytes=24 * GIB, parts=FULL_7B_PARTS)
    assert _load(tight, tmp_path).fsdp_config["fsdp_offload_params"] is True
    assert any("offloaded" in reason for reason in choose_strategy(tight).reasons)
    # every key is one accelerate launch understands (a typo would be silently ignored otherwise)
    assert set(config.fsdp_config) <= _launcher_dests()


def test_deepspeed_zero3_on_request(tmp_path: Path) -> None:
    inp = ScaleInput(method="full", n_gpus=2, fits_one_gpu=False, gpu_bytes=24 * GIB, parts=FULL_7B_PARTS,
                     prefer="deepspeed")
    config = _load(inp, tmp_path)
    assert config.distributed_type == DistributedType.DEEPSPEED
    assert config.deepspeed_config["zero_stage"] == 3
    assert config.deepspeed_config["offload_param_device"] == "cpu"
    assert set(config.deepspeed_config) <= _launcher_dests()


def test_cpu_processes_are_spawned_per_rank_without_mixed_precision(tmp_path: Path) -> None:
    config = _load(ScaleInput(method="lora", n_gpus=2, fits_one_gpu=True, cpu=True), tmp_path)
    # MULTI_CPU / --cpu would make accelerate start a single process; multi-GPU mode spawns one per rank
    assert config.distributed_type == DistributedType.MULTI_GPU
    assert config.use_cpu is False and config.mixed_precision == "no"
    cmd = launch_command("r.yaml", 2, tmp_path / "cfg.yaml", cpu=True)
    assert cmd[:2] == ["env", "CUDA_VISIBLE_DEVICES="] and "--cpu" not in cmd


def test_from_plan_uses_the_planners_estimate() -> None:
    from ftwiz.core.planner.plan import MemoryEstimate, Plan

    plan = Plan(method="full", device="cuda", micro_batch=1, grad_accum=8, gradient_checkpointing=True,
                max_seq_len=2048, optimizer="adamw_torch", dtype="bf16", fits=False,
                estimate=MemoryEstimate(peak_bytes=90 * GIB, parts=FULL_7B_PARTS, budget_bytes=22 * GIB))
    choice = choose_strategy(ScaleInput.from_plan(plan, 2))
    assert choice.strategy == "fsdp" and choice.cpu_offload


def test_launch_command_runs_ftwiz_train_under_accelerate(tmp_path: Path) -> None:
    cmd = launch_command("recipe.yaml", 2, tmp_path / "cfg.yaml", cpu=True, train_args=["--run-name", "x"])
    assert cmd[cmd.index("--config_file") + 1] == str(tmp_path / "cfg.yaml")
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("-m"):] == ["-m", "ftwiz.tui.launcher_main", "train", "recipe.yaml", "--run-name", "x"]
    with pytest.raises(FtwizError):
        launch_command("recipe.yaml", 0, "cfg.yaml")


def test_accelerate_launch_hands_the_fsdp_settings_to_every_rank(tmp_path: Path) -> None:
    """Launch two ranks of a script that reports what accelerate told it (no GPU needed to launch)."""
    import json
    import os
    import subprocess

    from ftwiz.core.deploy.server import free_port

    config = write_accelerate_config(ScaleInput(method="full", n_gpus=2, fits_one_gpu=False, gpu_bytes=24 * GIB,
                                                parts=FULL_7B_PARTS, layer_cls="Qwen2DecoderLayer"),
                                     tmp_path / "fsdp.yaml")
    script = tmp_path / "report.py"
    # each rank reports into a file of its own: two ranks printing to one pipe at once can share a line
    script.write_text("import json, os, pathlib, sys\n"
                      "report = {k: v for k, v in os.environ.items() "
                      "if k.startswith(('FSDP_', 'ACCELERATE_', 'RANK', 'WORLD_SIZE'))}\n"
                      "pathlib.Path(sys.argv[1], 'rank-' + os.environ['RANK'] + '.json').write_text(json.dumps(report))\n",
                      encoding="utf-8")
    cmd = launch_command(None, 2, config, main_process_port=free_port())
    cmd = cmd[:cmd.index("-m")] + [str(script), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env=os.environ | {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(tmp_path.glob("rank-*.json"))]
    assert sorted(r["RANK"] for r in ranks) == ["0", "1"] and {r["WORLD_SIZE"] for r in ranks} == {"2"}
    for env in ranks:
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD"
        assert env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "Qwen2DecoderLayer"
        assert env["FSDP_OFFLOAD_PARAMS"] == "true"  # 84 GiB / 2 + activations does not fit 24 GiB
        assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
