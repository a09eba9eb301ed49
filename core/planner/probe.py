"""``ftwiz plan --probe``: measure the plan with a few real steps, and search a setting that fits.

Each attempt is one child process (``ftwiz.core.planner.probe_child``) that loads the model as
``ftwiz train`` would and runs a few optimizer steps through the Trainer on the longest samples of the
user's data (or synthetic ones at ``--seq-len``). The search, from the planned setting:
- over the budget (or out of memory): halve the micro-batch down to 1, then turn gradient checkpointing
  on, then halve the max length (not below 64), until an attempt fits or nothing is left to lower;
- within the budget: double the micro-batch while the measurement plus what the estimator says the
  double adds stays within the budget, the target effective batch allows it, and no smaller
  micro-batch already went over.
What the user fixed (``--batch-size``, ``--grad-ckpt``) is measured, never searched. Every attempt is
stored (``ftwiz.core.planner.measured``) so ``ftwiz train`` and the wizard use it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.planner.estimator import estimate_memory, peak_bytes
from ftwiz.core.planner.measured import machine_identity, reestimated, save_measurements, setup_of
from ftwiz.core.planner.plan import Measurement, Plan
from ftwiz.core.planner.spec import ModelSpec

GIB = 1024**3
MIN_LENGTH = 64
DEFAULT_STEPS = 3
CHILD_TIMEOUT_S = 1800.0  # an 8B model on a slow disk can take minutes to load; a hang must still end
MAX_MICRO_BATCH = 32

Measure = Callable[[dict], dict]


@dataclass
class ProbeReport:
    plan: Plan  # the plan after the search, ``measured`` set to the chosen attempt
    attempts: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> Measurement | None:
        return self.plan.measured


def measure_once(request: dict, timeout: float = CHILD_TIMEOUT_S) -> dict:
    """One attempt in a child process; its JSON result (an ``error`` key says why it failed)."""
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        out = subprocess.run([sys.executable, "-m", "ftwiz.core.planner.probe_child"], input=json.dumps(request),
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"the probe did not finish within {timeout:.0f} s", "oom": False, "peak_bytes": 0}
    lines = out.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (out.stderr or "").strip().splitlines()[-3:]
        # A process killed by the kernel (out of host memory) leaves no result line, only its signal.
        reason = "killed (out of memory?)" if out.returncode in (-9, 137) else " / ".join(tail) or "no result"
        return {"error": f"probe child exited with status {out.returncode}: {reason}", "oom": out.returncode in (-9, 137),
                "peak_bytes": 0}


def _job(recipe) -> dict:
    """What the recipe adds to the estimator's view of a plan: its stage and packing (see ``setup_of``)."""
    return {"stage": recipe.stage, "packed": bool(recipe.packing)}


def _measurement(plan: Plan, result: dict, *, model: str, identity: tuple[str, str], spec: ModelSpec,
                 micro_batch: int, grad_ckpt: bool, seq_len: int, budget: int | None, steps: int,
                 job: dict) -> Measurement:
    estimate = peak_bytes(estimate_memory(spec, setup_of(plan, micro_batch=micro_batch, grad_ckpt=grad_ckpt,
                                                         seq_len=seq_len, **job)))
    return Measurement(model=model, method=plan.method, seq_len=seq_len, micro_batch=micro_batch, grad_ckpt=grad_ckpt,
                       lora_rank=plan.lora_rank, device=plan.device, device_name=identity[0], driver=identity[1],
                       peak_bytes=int(result.get("peak_bytes") or 0), parts=result.get("parts") or {},
                       estimate_bytes=estimate, budget_bytes=budget, tokens_per_s=result.get("tokens_per_s"),
                       steps=int(result.get("steps") or 0), oom=bool(result.get("oom")), error=result.get("error"))


def _verdict(m: Measurement) -> str:
    if m.oom:
        return "out of memory"
    if m.error:
        return f"failed: {m.error}"
    return f"{m.peak_bytes / GIB:.2f} GiB" + (" (over the budget)" if not m.fits else "")


def probe_plan(plan: Plan, *, recipe, spec: ModelSpec, model_dir: Path, model_key: str, hardware,
               synthetic: bool, budget_bytes: int | None = None, steps: int = DEFAULT_STEPS,
               fixed_batch: bool | None = None, fixed_ckpt: bool | None = None, fixed_length: bool = False,
               epoch_tokens: int | None = None, measure: Measure = measure_once,
               on_attempt: Callable[[Measurement], None] | None = None) -> ProbeReport:
    """Measure ``plan`` on this machine and search the setting that fits; the measured plan and every attempt.

    ``fixed_batch``/``fixed_ckpt`` default to what the recipe fixed; ``fixed_length`` (``--seq-len``) keeps
    the length. ``measure`` runs one attempt (a child process; tests pass a model of a machine).
    """
    if fixed_batch is None:
        fixed_batch = recipe.per_device_train_batch_size is not None
    if fixed_ckpt is None:
        fixed_ckpt = recipe.gradient_checkpointing is not None
    if steps < 1:
        raise FtwizError(f"--probe-steps {steps} must be at least 1", fix="e.g. --probe-steps 3")
    budget = budget_bytes if budget_bytes is not None else plan.estimate.budget_bytes
    identity = machine_identity(hardware, plan.device)
    report = ProbeReport(plan=plan)
    request_base = {"model_dir": str(model_dir), "recipe": recipe.model_dump(mode="json", exclude_unset=True),
                    "plan": plan.model_dump(mode="json"), "steps": steps, "synthetic": synthetic}

    def attempt(micro: int, ckpt: bool, length: int) -> Measurement:
        result = measure({**request_base, "micro_batch": micro, "grad_ckpt": ckpt, "seq_len": length})
        m = _measurement(plan, result, model=model_key, identity=identity, spec=spec, micro_batch=micro,
                         grad_ckpt=ckpt, seq_len=length, budget=budget, steps=steps, job=_job(recipe))
        report.attempts.append(m)
        report.notes.append(f"micro-batch {micro}, checkpointing {'on' if ckpt else 'off'}, {length} tokens: "
                            f"{_verdict(m)} (estimate {m.estimate_bytes / GIB:.2f} GiB)")
        if on_attempt:
            on_attempt(m)
        return m

    micro, ckpt, length = plan.micro_batch, plan.gradient_checkpointing, plan.max_seq_len
    failed: dict[tuple[bool, int], int] = {}  # (checkpointing, length) -> smallest micro-batch over the budget
    best = attempt(micro, ckpt, length)
    if best.error and not best.oom:
        raise FtwizError(f"the probe could not run: {best.error}",
                         fix="check that the model folder loads (`ftwiz train` would fail the same way)")
    while not best.fits:
        failed[(ckpt, length)] = min(failed.get((ckpt, length), micro), micro)
        if micro > 1 and not fixed_batch:
            micro //= 2
        elif not ckpt and not fixed_ckpt:
            ckpt = True
        elif length // 2 >= MIN_LENGTH and not fixed_length:
            length //= 2
        else:
            break
        best = attempt(micro, ckpt, length)
    if best.fits and not fixed_batch:
        ceiling = min(MAX_MICRO_BATCH, max(1, recipe.effective_batch_size))
        while micro * 2 <= ceiling and micro * 2 < failed.get((ckpt, length), MAX_MICRO_BATCH * 2):
            # What was measured plus what the estimator says the double adds (activations, logits, buffers).
            now = peak_bytes(estimate_memory(spec, setup_of(plan, micro_batch=micro, grad_ckpt=ckpt, seq_len=length,
                                                            **_job(recipe))))
            up = peak_bytes(estimate_memory(spec, setup_of(plan, micro_batch=micro * 2, grad_ckpt=ckpt,
                                                           seq_len=length, **_job(recipe))))
            if budget is not None and best.peak_bytes + (up - now) > budget:
                break
            trial = attempt(micro * 2, ckpt, length)
            if not trial.fits:
                break  # the last fitting attempt stays the choice
            micro, best = micro * 2, trial
    save_measurements(report.attempts)
    report.plan = _measured_plan(plan, best, recipe, epoch_tokens, spec)
    if best.fits and (length != plan.max_seq_len):
        report.notes.append(f"max length lowered to {length} tokens to fit (cutoff_len: {length})")
    if not best.fits:
        report.notes.append("nothing fits in the budget, even at micro-batch 1 with checkpointing and "
                            f"{length} tokens: pick a smaller model, QLoRA, or shorter samples")
    return report


def _measured_plan(plan: Plan, best: Measurement, recipe, epoch_tokens: int | None, spec: ModelSpec) -> Plan:
    grad_accum = recipe.gradient_accumulation_steps or max(1, math.ceil(recipe.effective_batch_size / best.micro_batch))
    update = {"measured": best, "micro_batch": best.micro_batch, "gradient_checkpointing": best.grad_ckpt,
              "max_seq_len": best.seq_len, "grad_accum": grad_accum, "fits": best.fits}
    if best.tokens_per_s and epoch_tokens:
        update["est_seconds_per_epoch"] = epoch_tokens / best.tokens_per_s
    reason = (f"measured: {best.peak_bytes / GIB:.2f} GiB peak at micro-batch {best.micro_batch} "
              f"(estimate {(best.estimate_bytes or 0) / GIB:.2f} GiB)")
    if best.tokens_per_s:
        reason += f", {best.tokens_per_s:.0f} tokens/s"
    measured = plan.model_copy(update={**update, "reasons": [*plan.reasons, reason]})
    measured.estimate = reestimated(measured, spec, **_job(recipe))
    return measured
