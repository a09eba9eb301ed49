"""``ftwiz train RECIPE --gpus N``: plan once, write the accelerate config, run N ranks of ``ftwiz train``.

    from ftwiz.core.scale.launch import distributed_train
    distributed_train("recipes/demo.yaml", 2, cpu=True, dry_run=True)   # prints the accelerate command

Why a run name is fixed here: every rank runs ``ftwiz train`` on its own, and a default run name contains
the time, so two ranks starting a second apart would write two different run directories. The launcher
decides the name once and passes ``--run-name`` to all of them; a resume passes ``--resume`` the same way.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.model_config import read_config
from ftwiz.core.scale.accelerate_config import ScaleInput, Strategy, launch_command, write_accelerate_config


def decoder_layer_class(model_dir: Path) -> str | None:
    """The transformer block class FSDP wraps (Qwen2ForCausalLM -> Qwen2DecoderLayer), from config.json."""
    try:
        config = read_config(model_dir)
    except FtwizError:
        return None
    for arch in config.get("architectures") or []:
        if arch.endswith("ForCausalLM"):
            return arch.removesuffix("ForCausalLM") + "DecoderLayer"
    return None


def distributed_train(recipe_path: str | Path | None, n_procs: int, *, cpu: bool = False,
                      prefer: Strategy | None = None, run_name: str | None = None, resume: str | None = None,
                      vram_gb: float | None = None, dry_run: bool = False,
                      say: Callable[[str], None] = print, passed: list[str] | None = None) -> int:
    """Train on ``n_procs`` GPUs (or CPU processes) under ``accelerate launch``; returns the exit status.

    ``passed``: ``ftwiz train`` flags each rank gets as given (``--max-steps 20``, ``--from RUN``)."""
    from ftwiz.core.deploy.server import free_port
    from ftwiz.core.hardware.detect import detect
    from ftwiz.core.models import resolve_model
    from ftwiz.core.paths import cache_dir
    from ftwiz.core.planner import plan_recipe
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.rundir import RunDir
    from ftwiz.core.train.runner import default_run_name

    if resume:
        recipe = load_recipe(RunDir.resolve(resume).recipe)
        name = RunDir.resolve(resume).name
    elif recipe_path is not None:
        recipe = load_recipe(recipe_path)
        name = run_name or recipe.run_name or default_run_name(recipe)
    else:
        raise FtwizError("give a recipe to train, or --resume RUN", fix="e.g. ftwiz train recipe.yaml --gpus 2")
    hardware = detect(probe_backends=False)
    if not cpu:
        gpus = [g for g in hardware.gpus if g.vendor in ("nvidia", "amd")]
        if len(gpus) < n_procs:
            raise FtwizError(f"--gpus {n_procs} asks for more GPUs than this machine has ({len(gpus)})",
                             where="--gpus", fix=f"use --gpus {max(len(gpus), 1)}, or add --cpu to test on CPU")
    plan = plan_recipe(recipe, hardware, vram_gb=vram_gb)
    model_dir = resolve_model(recipe.model_name_or_path, revision=recipe.revision)
    inp = ScaleInput.from_plan(plan, n_procs, layer_cls=decoder_layer_class(model_dir), cpu=cpu, prefer=prefer)
    config = write_accelerate_config(inp, cache_dir() / "accelerate" / f"{name}.yaml")
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            say(line[2:])
    train_args = (["--resume", name] if resume else ["--run-name", name]) + list(passed or [])
    if vram_gb is not None:  # each rank plans again: with the memory this plan was made for
        train_args += ["--vram-gb", str(vram_gb)]
    cmd = launch_command(None if resume else Path(recipe_path).resolve(), n_procs, config, cpu=cpu,
                         main_process_port=free_port(), train_args=train_args)
    say("$ " + shlex.join(cmd))
    if dry_run:
        return 0
    try:
        return subprocess.call(cmd)
    except FileNotFoundError as exc:
        raise FtwizError(f"cannot start accelerate: {exc}", where=Location(file=cmd[0]),
                         fix="install accelerate in the environment ftwiz runs in (pip install accelerate)") from None
