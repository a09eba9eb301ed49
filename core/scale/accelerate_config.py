"""Accelerate config files for training on several GPUs (or several CPU processes), chosen from the plan.

    from ftwiz.core.scale.accelerate_config import ScaleInput, write_accelerate_config, launch_command
    cfg = write_accelerate_config(ScaleInput(method="lora", n_gpus=2, fits_one_gpu=True), "ddp.yaml")
    subprocess.run(launch_command("recipes/demo.yaml", 2, cfg))

Why these three choices:
- **DDP** when one GPU holds the whole run (LoRA/QLoRA usually): every GPU keeps a full copy and only
  gradients travel, the fastest and simplest way to use more GPUs. It only buys speed, never memory.
- **FSDP** when it does not fit (a full fine-tune, or a model bigger than one card): weights, gradients and
  optimizer state are sharded across the GPUs, so each holds about 1/N of them. If even 1/N does not fit,
  parameters are offloaded to CPU RAM (slow, but it runs).
- **DeepSpeed ZeRO-3** shards the same things; offered when the user asks for it (it needs the `deepspeed`
  package and a CUDA toolchain, which ftwiz does not install).
Activations, logits and buffers are per-GPU whatever the strategy, so the sharded estimate divides only
the weight, gradient and optimizer parts of the planner's estimate by N.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ftwiz.core.errors import FtwizError

Strategy = Literal["ddp", "fsdp", "deepspeed"]

# Planner estimate parts that FSDP / ZeRO-3 split across GPUs; the rest stays whole on each GPU.
SHARDABLE_PARTS = ("weights", "trainable_weights", "gradients", "optimizer_states", "optimizer_states_paged")


@dataclass
class ScaleInput:
    """What the choice needs from a plan: method, GPU count and memory, and the single-GPU estimate."""

    method: Literal["full", "lora", "qlora"]
    n_gpus: int
    fits_one_gpu: bool
    per_gpu_bytes: int | None = None  # the planner's peak estimate for one process
    gpu_bytes: int | None = None  # usable memory of one GPU
    parts: dict[str, int] = field(default_factory=dict)  # the estimate broken down (plan.estimate.parts)
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    layer_cls: str | None = None  # decoder layer class for FSDP wrapping, e.g. Qwen2DecoderLayer
    cpu: bool = False  # processes on CPU (gloo): for tests and machines without a GPU
    prefer: Strategy | None = None  # the user's explicit choice

    @classmethod
    def from_plan(cls, plan: Any, n_gpus: int, *, gpu_bytes: int | None = None, layer_cls: str | None = None,
                  cpu: bool = False, prefer: Strategy | None = None) -> ScaleInput:
        """From a ``ftwiz.core.planner.plan.Plan`` (a single-GPU plan: its estimate is per process)."""
        budget = plan.estimate.budget_bytes if gpu_bytes is None else gpu_bytes
        return cls(method=plan.method, n_gpus=n_gpus, fits_one_gpu=bool(plan.fits),
                   per_gpu_bytes=plan.estimate.peak_bytes, gpu_bytes=budget, parts=dict(plan.estimate.parts),
                   dtype=plan.dtype, layer_cls=layer_cls, cpu=cpu or plan.device == "cpu", prefer=prefer)


def sharded_bytes(inp: ScaleInput) -> int | None:
    """Estimated peak per GPU when weights, gradients and optimizer state are split n_gpus ways."""
    if inp.parts:
        shard = sum(v for k, v in inp.parts.items() if k in SHARDABLE_PARTS)
        rest = sum(v for k, v in inp.parts.items() if k not in SHARDABLE_PARTS)
        return int(shard / max(inp.n_gpus, 1) + rest)
    return None if inp.per_gpu_bytes is None else int(inp.per_gpu_bytes / max(inp.n_gpus, 1))


@dataclass
class ScaleChoice:
    strategy: Strategy
    cpu_offload: bool
    reasons: list[str]


def choose_strategy(inp: ScaleInput) -> ScaleChoice:
    """DDP, FSDP or ZeRO-3, with CPU offload when even a 1/N share does not fit, and why in words."""
    if inp.n_gpus < 1:
        raise FtwizError(f"n_gpus {inp.n_gpus} must be at least 1", where="n_gpus", fix="e.g. --num-gpus 2")
    if inp.cpu:
        return ScaleChoice("ddp", False, ["CPU processes: plain data parallel over gloo (no sharding on CPU); "
                                          "launched like GPU ranks, with no GPU visible"])
    reasons: list[str] = []
    strategy: Strategy
    if inp.prefer:
        strategy = inp.prefer
        reasons.append(f"{strategy} as asked")
    elif inp.fits_one_gpu and inp.method in ("lora", "qlora"):
        strategy = "ddp"
        reasons.append(f"{inp.method} fits on one GPU: each of the {inp.n_gpus} GPUs trains a full copy on its "
                       "own slice of each batch (DDP), so more GPUs means more speed")
    elif inp.method == "qlora":
        strategy = "ddp"
        reasons.append("QLoRA's 4-bit weights are not sharded here: DDP, with the planner's smaller batch")
    else:
        strategy = "fsdp"
        why = "a full fine-tune" if inp.method == "full" else "the model does not fit on one GPU"
        reasons.append(f"{why}: FSDP splits weights, gradients and optimizer state across {inp.n_gpus} GPUs")
    offload = False
    share = sharded_bytes(inp)
    if strategy != "ddp" and share is not None and inp.gpu_bytes and share > inp.gpu_bytes:
        offload = True
        reasons.append(f"even a 1/{inp.n_gpus} share (~{share / 2**30:.1f} GiB) exceeds one GPU "
                       f"({inp.gpu_bytes / 2**30:.1f} GiB): parameters are offloaded to CPU RAM (slower)")
    elif strategy == "ddp" and not inp.fits_one_gpu:
        reasons.append("warning: DDP keeps a full copy per GPU, so it will not fit where one GPU does not")
    return ScaleChoice(strategy, offload, reasons)


def _mixed_precision(inp: ScaleInput) -> str:
    return "no" if inp.cpu or inp.dtype == "fp32" else inp.dtype


def accelerate_config(inp: ScaleInput) -> tuple[dict[str, Any], ScaleChoice]:
    """The config as accelerate's ``ClusterConfig`` reads it, and the choice behind it."""
    choice = choose_strategy(inp)
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "machine_rank": 0,
        "num_machines": 1,
        "num_processes": inp.n_gpus,
        "mixed_precision": _mixed_precision(inp),
        "use_cpu": inp.cpu,
        "rdzv_backend": "static",
        "same_network": True,
        "main_training_function": "main",
        "enable_cpu_affinity": False,
    }
    if inp.cpu:
        # `accelerate launch --cpu` (and a MULTI_CPU config) start ONE process on a single machine: it expects
        # mpirun for more. The multi-GPU mode is the one that spawns a process per rank (through torchrun);
        # with no GPU visible each rank trains on CPU and torch.distributed uses gloo.
        config.update(distributed_type="MULTI_GPU", use_cpu=False)
    elif choice.strategy == "ddp":
        config.update(distributed_type="MULTI_GPU", gpu_ids="all")
    elif choice.strategy == "fsdp":
        config.update(distributed_type="FSDP", fsdp_config={
            "fsdp_version": 1,
            "fsdp_sharding_strategy": "FULL_SHARD",
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP" if inp.layer_cls else "SIZE_BASED_WRAP",
            **({"fsdp_transformer_layer_cls_to_wrap": inp.layer_cls} if inp.layer_cls
               else {"fsdp_min_num_params": 100_000_000}),
            "fsdp_offload_params": choice.cpu_offload,
            "fsdp_backward_prefetch": "BACKWARD_PRE",
            "fsdp_forward_prefetch": False,
            # each rank loads weights on rank 0 only and receives its shard: N copies would not fit in RAM
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_sync_module_states": True,
            # LoRA trains a few tensors inside frozen flat parameters: orig params keep them addressable
            "fsdp_use_orig_params": inp.method != "full",
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
        })
    else:
        config.update(distributed_type="DEEPSPEED", deepspeed_config={
            "zero_stage": 3,
            "offload_optimizer_device": "cpu" if choice.cpu_offload else "none",
            "offload_param_device": "cpu" if choice.cpu_offload else "none",
            "zero3_init_flag": True,
            # the saved model is a normal 16-bit checkpoint, not ZeRO shards, so merge/export work on it
            "zero3_save_16bit_model": True,
            "gradient_clipping": 1.0,
        })
    return config, choice


def write_accelerate_config(inp: ScaleInput, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write the YAML (atomically), with the reasons as comments at the top."""
    import yaml
    from ftwiz.core.atomic import write_text_atomic

    config, choice = accelerate_config(inp)
    header = ["# accelerate config written by ftwiz (ftwiz.core.scale.accelerate_config)",
              f"# strategy: {choice.strategy}" + (" + CPU offload" if choice.cpu_offload else "")]
    header += [f"# - {reason}" for reason in choice.reasons]
    text = "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=True)
    return write_text_atomic(Path(path), text, overwrite=overwrite)


def _accelerate_launcher() -> list[str]:
    """`accelerate launch` from this Python's environment (the venv need not be activated)."""
    script = Path(sys.executable).with_name("accelerate")
    if script.is_file():
        return [str(script), "launch"]
    found = shutil.which("accelerate")
    return [found, "launch"] if found else [sys.executable, "-m", "accelerate.commands.launch"]


def launch_command(recipe_path: str | Path | None, n_procs: int, config_path: str | Path, *, cpu: bool = False,
                   main_process_port: int | None = None, train_args: list[str] | None = None) -> list[str]:
    """``accelerate launch --config_file CFG --num_processes N -m ftwiz.tui.launcher_main train RECIPE ...``.

    ``recipe_path`` may be None with ``train_args=['--resume', RUN]``. Rank 0 writes events and status.
    ``cpu``: N processes on CPU talking over gloo (the config must come from a ScaleInput with cpu=True).
    """
    if n_procs < 1:
        raise FtwizError(f"n_procs {n_procs} must be at least 1", where="n_procs", fix="e.g. 2 for two GPUs")
    # cpu: no --cpu flag (it would run a single process); hiding the GPUs makes every rank a CPU rank
    cmd = ["env", "CUDA_VISIBLE_DEVICES="] if cpu else []
    cmd += [*_accelerate_launcher(), "--config_file", str(config_path), "--num_processes", str(n_procs)]
    if main_process_port:
        cmd += ["--main_process_port", str(main_process_port)]
    cmd += ["-m", "ftwiz.tui.launcher_main", "train"]
    if recipe_path is not None:
        cmd.append(str(recipe_path))
    return cmd + list(train_args or [])
