"""Measured peaks from ``ftwiz plan --probe``: what they are, where they are kept, how a plan uses them.

A :class:`Measurement` is keyed by what sets the peak and what it was measured on: model, method,
length, micro-batch, checkpointing, LoRA rank, device name and driver. They are kept in
``cache_dir()/measurements.json`` (newest wins for a key), so ``ftwiz train`` and the wizard's plan step
find them through :func:`apply_measurements` whenever they plan the same job on the same machine.
A measurement of another machine or driver is never applied: the CUDA context and kernels differ.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.hardware.probe import GpuMemoryReading
from ftwiz.core.paths import cache_dir
from ftwiz.core.planner.estimator import TrainSetup, estimate_memory, peak_bytes
from ftwiz.core.planner.plan import Measurement, MemoryEstimate, Plan

GIB = 1024**3
MiB = 1024**2
STORE_NAME = "measurements.json"


def setup_of(plan: Plan, *, micro_batch: int, grad_ckpt: bool, seq_len: int, stage: str = "sft",
             packed: bool = False) -> TrainSetup:
    """The estimator's view of ``plan`` at another micro-batch, checkpointing or length.

    ``stage`` and ``packed`` are the recipe's ``stage`` and ``packing`` (the Plan does not carry them): a
    packed micro-batch is one row of micro_batch x seq_len tokens whose masks grow with the row, and
    dpo/orpo run two sequences per example, so leaving them out compares a measurement with a smaller job.
    """
    return TrainSetup(method=plan.method, seq_len=seq_len, micro_batch=micro_batch, grad_ckpt=grad_ckpt,
                      lora_rank=plan.lora_rank or 16, lora_targets=tuple(plan.lora_targets) or ("all",),
                      dtype=plan.dtype, optimizer=plan.optimizer, device=plan.device, sdpa_mask=True,
                      stage=stage, packed=packed)


def reestimated(plan: Plan, spec, *, stage: str = "sft", packed: bool = False) -> MemoryEstimate:
    """The estimate for the plan's current setting (after a measurement changed it), same budget."""
    parts = estimate_memory(spec, setup_of(plan, micro_batch=plan.micro_batch, grad_ckpt=plan.gradient_checkpointing,
                                           seq_len=plan.max_seq_len, stage=stage, packed=packed))
    return MemoryEstimate(peak_bytes=peak_bytes(parts), parts=parts, budget_bytes=plan.estimate.budget_bytes)


def device_peak(reading: GpuMemoryReading) -> tuple[int, dict[str, int]]:
    """The device-view peak of a CUDA probe and its measured parts, from one seam reading.

    NVML's process figure is read after the steps; the allocator only grows its reserve unless told to
    empty it, so context + peak reserve = NVML process used - reserved now + peak reserved. Without
    NVML's per-process figure the context cannot be measured, and the part says so by its name.
    """
    parts = {"torch_max_allocated": reading.torch_max_allocated_bytes,
             "allocator_reserve": reading.torch_max_reserved_bytes - reading.torch_max_allocated_bytes}
    if reading.nvml_process_used_bytes is not None:
        context = max(0, reading.nvml_process_used_bytes - reading.torch_reserved_bytes)
        parts["cuda_context_and_libraries"] = context
        parts["nvml_process_used"] = reading.nvml_process_used_bytes
    else:
        from ftwiz.core.planner.estimator import CUDA_CONTEXT_BYTES

        context = CUDA_CONTEXT_BYTES
        parts["cuda_context_estimated"] = context
    if reading.nvml_device_used_bytes is not None:
        parts["nvml_device_used"] = reading.nvml_device_used_bytes
    return reading.torch_max_reserved_bytes + context, parts


def model_key(name_or_path: str, revision: str | None = None) -> str:
    """How measurements name a model: a local folder by its absolute path, a hub id with its revision.

    Cheap and offline on purpose (planning must not build the demo or scan the hub cache to look one up).
    """
    path = Path(name_or_path).expanduser()
    if name_or_path != "demo" and path.exists():
        return str((path.parent if path.suffix == ".json" else path).resolve())
    return f"{name_or_path}@{revision}" if revision else name_or_path


def store_path() -> Path:
    return cache_dir() / STORE_NAME


def load_measurements(path: Path | None = None) -> list[Measurement]:
    path = path or store_path()
    if not path.exists():
        return []
    try:
        return [Measurement.model_validate(item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError):
        return []  # a damaged cache file is only lost measurements: they are re-measured, never trusted


def save_measurements(new: list[Measurement], path: Path | None = None) -> None:
    """Add measurements, replacing older ones with the same key (written atomically)."""
    path = path or store_path()
    keep = {m.key: m for m in load_measurements(path)}
    for measurement in new:
        keep[measurement.key] = measurement
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps([m.model_dump(mode="json") for m in keep.values()], indent=1))


def machine_identity(hardware, device: str) -> tuple[str, str]:
    """(device name, driver) as measurements are keyed; empty strings when unknown."""
    if hardware is None:
        return "", ""
    if device in ("cuda", "mps") and hardware.best_gpu is not None:
        return hardware.best_gpu.name, hardware.driver_version or ""
    return hardware.cpu_model or "", ""


def matching(measurements: list[Measurement], *, model: str, method: str, seq_len: int, lora_rank: int | None,
             device: str, device_name: str, driver: str) -> list[Measurement]:
    return [m for m in measurements if (m.model, m.method, m.seq_len, m.device, m.device_name, m.driver) ==
            (model, method, seq_len, device, device_name, driver) and m.lora_rank == lora_rank]


def apply_measurements(plan: Plan, *, model: str, hardware, fixed_batch: bool, fixed_ckpt: bool,
                       effective_batch: int, epoch_tokens: int | None,
                       measurements: list[Measurement] | None = None, spec=None, stage: str = "sft",
                       packed: bool = False) -> Plan:
    """The plan with this machine's measurements applied: a measured micro-batch, and measured time.

    Among measured setups of this job that fit the budget, the largest micro-batch wins (checkpointing
    off before on), within what the user fixed. The time per epoch then comes from measured tokens/s.
    """
    device_name, driver = machine_identity(hardware, plan.device)
    if not device_name:
        return plan
    found = matching(measurements if measurements is not None else load_measurements(), model=model,
                     method=plan.method, seq_len=plan.max_seq_len, lora_rank=plan.lora_rank, device=plan.device,
                     device_name=device_name, driver=driver)
    budget = plan.estimate.budget_bytes
    usable = [m for m in found if not m.oom and m.error is None and (budget is None or m.peak_bytes <= budget)
              and (not fixed_batch or m.micro_batch == plan.micro_batch)
              and (not fixed_ckpt or m.grad_ckpt == plan.gradient_checkpointing)]
    if not usable:
        over = [m for m in found if m.micro_batch == plan.micro_batch and m.grad_ckpt == plan.gradient_checkpointing]
        if over:
            plan = plan.model_copy(update={"measured": over[-1]})
            plan.warnings.append(f"measured on this machine: {over[-1].peak_bytes / GIB:.1f} GiB at micro-batch "
                                 f"{plan.micro_batch}, more than the {(budget or 0) / GIB:.1f} GiB budget; "
                                 "run `ftwiz plan --probe` to search a setting that fits")
        return plan
    best = max(usable, key=lambda m: (m.micro_batch, not m.grad_ckpt, m.measured_at))
    grad_accum = max(1, math.ceil(effective_batch / best.micro_batch))
    update = {"measured": best, "micro_batch": best.micro_batch, "gradient_checkpointing": best.grad_ckpt,
              "fits": True}
    if best.micro_batch != plan.micro_batch:
        update["grad_accum"] = grad_accum
    if best.tokens_per_s and epoch_tokens:
        update["est_seconds_per_epoch"] = epoch_tokens / best.tokens_per_s
    reasons = [*plan.reasons, f"measured on this machine ({best.device_name}): peak {best.peak_bytes / GIB:.2f} GiB at "
               f"micro-batch {best.micro_batch}, checkpointing {'on' if best.grad_ckpt else 'off'}"
               + (f", {best.tokens_per_s:.0f} tokens/s" if best.tokens_per_s else "")]
    update["reasons"] = reasons
    measured = plan.model_copy(update=update)
    if spec is not None:
        measured.estimate = reestimated(measured, spec, stage=stage, packed=packed)
    return measured
