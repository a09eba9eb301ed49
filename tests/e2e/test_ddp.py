"""A real 2-process data-parallel run on CPU (gloo) under `accelerate launch`, killed and resumed.

Two processes with micro-batch 2 see, step for step, the same 4 samples one process with micro-batch 4
sees (accelerate hands batch 2k to rank 0 and 2k+1 to rank 1 from the same shuffled order, and
transformers averages the loss over the tokens of all ranks), so within the first epoch the two loss
curves agree step by step, before and after the kill. That is the proof the ranks split the data and
synchronise their gradients rather than each training alone. (At an epoch's ragged end the ranks pad with
repeated samples, so the comparison stays inside one epoch.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from ftwiz.core.deploy.server import free_port
from ftwiz.core.events import read_events
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.scale.accelerate_config import ScaleInput, launch_command, write_accelerate_config
from ftwiz.core.train.runner import train

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "recipes" / "demo" / "demo.jsonl"
MAX_STEPS = 6


def recipe_fields(model: Path, **fields) -> dict:
    base = {"model_name_or_path": str(model), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
            "max_samples": 64, "cutoff_len": 128, "learning_rate": 1e-2, "max_steps": MAX_STEPS,
            "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "lora_rank": 8,
            "save_steps": 2, "eval_steps": 100, "warmup_ratio": 0.0, "lr_scheduler_type": "constant",
            "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.0, "lora_dropout": 0.0}
    return base | fields


def step_losses(run_dir: Path) -> dict[int, float]:
    return {e.step: e.loss for e in read_events(run_dir / "events.jsonl") if e.type == "step"}


def _launch(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})


def _kill_tree(child: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it (torchrun puts its workers in their own sessions)."""
    import psutil

    parent = psutil.Process(child.pid)
    procs = [*parent.children(recursive=True), parent]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=60)
    child.wait(timeout=60)


def _wait_for_checkpoint(child: subprocess.Popen, events: Path, log: Path, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if events.is_file():
            saved = [e.step for e in read_events(events) if e.type == "checkpoint"]
            if saved:
                return saved[-1]
        if child.poll() is not None:
            pytest.fail(f"the DDP run exited ({child.returncode}) before a checkpoint:\n{log.read_text()[-4000:]}")
        time.sleep(0.02)
    pytest.fail("no checkpoint within the time limit")


@pytest.mark.slow
def test_two_cpu_processes_match_one_and_resume_after_a_kill(tiny_qwen2: Path, tmp_path: Path) -> None:
    single = train(parse_recipe(recipe_fields(tiny_qwen2, run_name="single", per_device_train_batch_size=4)))
    assert single.status == "completed"

    recipe_file = tmp_path / "ddp.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe_fields(tiny_qwen2, run_name="ddp")), encoding="utf-8")
    config = write_accelerate_config(ScaleInput(method="lora", n_gpus=2, fits_one_gpu=True, cpu=True),
                                     tmp_path / "accelerate.yaml")
    run = RunDir.named("ddp")
    log = tmp_path / "first.log"
    child = _launch(launch_command(recipe_file, 2, config, cpu=True, main_process_port=free_port()), log)
    try:
        saved_at = _wait_for_checkpoint(child, run.events, log)
    finally:
        _kill_tree(child)  # the launcher and both ranks, mid-run, as a crash or the OOM killer would
    assert saved_at < MAX_STEPS, "the run finished before it could be killed"
    assert run.state() == "running" and run.checkpoint_steps()
    # two ranks really trained together: the Trainer saved one RNG state per process
    checkpoint = run.checkpoints / f"checkpoint-{saved_at}"  # announced, so complete (a later one may be torn)
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in checkpoint.iterdir()}

    log = tmp_path / "resume.log"
    resumed = _launch(launch_command(None, 2, config, cpu=True, main_process_port=free_port(),
                                     train_args=["--resume", "ddp"]), log)
    assert resumed.wait(timeout=300) == 0, log.read_text()[-4000:]
    assert run.state() == "completed"
    assert (run.adapter / "adapter_model.safetensors").is_file()
    events = list(read_events(run.events))
    started = [e for e in events if e.type == "started"]
    assert started[-1].resumed_from_step >= 2
    # only rank 0 reports: one event per optimizer step, not one per process
    resumed_steps = [e.step for e in events[events.index(started[-1]):] if e.type == "step"]
    assert resumed_steps == list(range(started[-1].resumed_from_step + 1, MAX_STEPS + 1)), \
        [(e.type, getattr(e, "step", None)) for e in events]

    expected, got = step_losses(single.run_dir), step_losses(run.root)
    print("loss, 1 process:", expected, "2 processes:", got)
    assert sorted(got) == sorted(expected) == list(range(1, MAX_STEPS + 1))
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-4), step
    assert got[MAX_STEPS] < got[1] * 0.97  # and it learned
