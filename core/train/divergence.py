"""A training whose loss stops being a number is stopped, kept out of the results, and explained.

A NaN or infinite training loss (learning rate too high, fp16 overflow, a broken sample) sends NaN
gradients into the optimizer, which writes NaN into the weights; the Trainer itself would run on for the
remaining steps and ftwiz would save those weights as the adapter and call the run completed.
:class:`LossWatch` sees every loss the Trainer logs (``EventCallback.on_log``, so SFT, pre-training and
TRL's preference stages alike), :func:`hold_back` stops the Trainer at that step without saving a
checkpoint or evaluating, and the runner raises :func:`divergence_error` instead of saving the result.

Only the loss counts: a non-finite ``grad_norm`` with a finite loss is fp16 loss scaling skipping an
overflowing step, which the GradScaler does on purpose. The same GradScaler also skips a step whose fp16
forward pass overflowed: its loss is inf or NaN, but the optimizer never applies it and the weights stay
as they were. So a non-finite loss only counts as divergence when the trainable weights are no longer all
finite (checked only then: milliseconds, even for a full fine-tune on a GPU), or when
:data:`SKIPPED_LIMIT` logs in a row were not finite (a run that only overflows learns nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError

# a learning rate above these is outside the usual range for the method: suggest the usual value
USUAL_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}
SKIPPED_LIMIT = 3  # non-finite logs in a row with finite weights (skipped fp16 overflow steps) that still stop


@dataclass(frozen=True)
class Divergence:
    """The first logged loss that was not a finite number, and the last one before it that was."""

    step: int  # optimizer step of the non-finite log
    loss: float  # nan, inf or -inf
    last_finite_step: int | None = None
    last_finite_loss: float | None = None

    @property
    def kind(self) -> str:
        """``nan``, ``inf`` or ``-inf``: what the loss became, as a user reads it."""
        return "nan" if math.isnan(self.loss) else ("inf" if self.loss > 0 else "-inf")


class LossWatch:
    """Every logged training loss in order; the first non-finite one is the divergence (kept, never reset)."""

    def __init__(self, history: list[tuple[int, float]] | None = None) -> None:
        # (step, loss) of the finite logs so far; a resumed run starts with its earlier ones
        self.finite: list[tuple[int, float]] = [(s, v) for s, v in history or [] if math.isfinite(v)]
        self.diverged: Divergence | None = None
        self.skipped = 0  # non-finite logs in a row whose weights stayed finite (fp16 overflow steps skipped)

    @classmethod
    def from_steps(cls, steps: list[Any]) -> LossWatch:
        """Seeded with the step events a resumed run already logged (``loss`` None: not finite)."""
        return cls([(s.step, float(s.loss)) for s in steps if s.loss is not None])

    def rewind(self, step: int) -> None:
        """Training (re)starts at ``step`` (a resume): losses logged after it belong to the lost future."""
        while self.finite and self.finite[-1][0] > step:
            self.finite.pop()

    def observe(self, step: int, loss: float, weights_finite: Callable[[], bool] | None = None) -> Divergence | None:
        """Record the loss logged at ``step``; the divergence when it (or an earlier one) is not finite.

        ``weights_finite`` (asked only for a non-finite loss) says whether the trainable weights are still all
        finite numbers: then the optimizer skipped the step (fp16 overflow) and training goes on, up to
        :data:`SKIPPED_LIMIT` such logs in a row. Without it every non-finite loss is a divergence."""
        if self.diverged is None:
            if math.isfinite(loss):
                self.finite.append((step, loss))
                self.skipped = 0
            elif weights_finite is not None and self.skipped + 1 < SKIPPED_LIMIT and weights_finite():
                self.skipped += 1
            else:
                last = self.finite[-1] if self.finite else (None, None)
                self.diverged = Divergence(step, loss, *last)
        return self.diverged


def trainable_weights_finite(model: Any) -> bool:
    """Whether every trainable parameter of ``model`` (a torch module; LoRA's matrices under peft) holds only
    finite numbers; False without a model (nothing shows the step was skipped: never keep weights that may be
    NaN). One reduction per tensor, on its device."""
    if model is None:
        return False
    import torch

    with torch.no_grad():
        return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


def hold_back(control: Any) -> None:
    """Stop the Trainer now, and neither save nor evaluate the weights the non-finite loss produced.

    Called from ``on_log`` (the Trainer saves after logging, in the same step) and again at epoch end
    (where ``save_strategy: epoch`` would otherwise save once more after the stop).
    """
    control.should_training_stop = True
    control.should_save = False
    control.should_evaluate = False


def good_checkpoint(checkpoints: Path, divergence: Divergence) -> Path | None:
    """The newest complete checkpoint whose weights were shown to give a finite loss, or None.

    ``checkpoint-S`` holds the weights after step S; the loss logged at step L was computed with the
    weights of the steps before L. So only a checkpoint older than the last finite log is known good:
    the one saved at that very step may hold the weights that produced the non-finite loss.
    """
    if divergence.last_finite_step is None or not checkpoints.is_dir():
        return None
    steps = sorted((int(p.name[11:]), p) for p in checkpoints.glob("checkpoint-*") if p.name[11:].isdigit())
    for step, path in reversed(steps):
        if step < divergence.last_finite_step and (path / "trainer_state.json").is_file():
            return path
    return None


def _newest_checkpoint(checkpoints: Path) -> str | None:
    names = [p.name for p in checkpoints.glob("checkpoint-*")
             if p.name[11:].isdigit() and (p / "trainer_state.json").is_file()] if checkpoints.is_dir() else []
    return max(names, key=lambda name: int(name[11:]), default=None)


def divergence_error(divergence: Divergence, *, recipe: Any, plan: Any, run_name: str,
                     checkpoints: Path) -> FtwizError:
    """The failure a diverged run ends with: the step, the last finite loss, and the knobs to change.

    ``recipe`` is the run's Recipe (learning_rate, max_grad_norm, dataset); ``plan`` its Plan (method,
    dtype, device); ``checkpoints`` the run's checkpoints folder, to name where a new run can start from.
    """
    what = f"training diverged: the loss became {divergence.kind} at step {divergence.step}"
    if divergence.last_finite_step is not None:
        what += f" (last finite loss {divergence.last_finite_loss:.4g} at step {divergence.last_finite_step})"
    else:
        what += " (no finite loss was logged before it)"
    what += "; the weights it produced were not saved"
    lr = recipe.learning_rate
    fixes = [f"lower learning_rate (now {lr:g}; try {min(lr / 2, USUAL_LEARNING_RATE.get(plan.method, lr)):g})"]
    if plan.dtype == "fp16" and plan.device != "cpu":
        fixes.append("train in bf16 instead of fp16, which overflows above 65504 (compute_dtype: bf16; fp32 on "
                     "a GPU without bf16)")
    if recipe.max_grad_norm == 0:
        fixes.append("turn gradient clipping back on (max_grad_norm: 1.0; 0 turns it off)")
    elif recipe.max_grad_norm > 1.0:
        fixes.append(f"clip gradients harder (max_grad_norm now {recipe.max_grad_norm:g}; try 1.0)")
    data = recipe.dataset[0] if len(recipe.dataset) == 1 else "DATASET"
    fixes.append(f"check the data for broken or extreme samples (`ftwiz data check {data}`)")
    new_run = f"then train a new run: `ftwiz train RECIPE --run-name {run_name}-2`"
    good = good_checkpoint(checkpoints, divergence)
    if good is not None:
        start = f"adding `--from {good}`" if plan.method in ("lora", "qlora") else \
            f"with model_name_or_path: {good} in the recipe"
        new_run += f", {start} to start from {good.name}, the last one whose weights still gave a finite loss"
    elif getattr(recipe, "adapter_name_or_path", None):  # no checkpoint of its own: keep the adapter it started from
        new_run += f", adding `--from {recipe.adapter_name_or_path}` to start from the adapter this run started from"
    newest = _newest_checkpoint(checkpoints)
    if newest is not None:
        new_run += f" (`ftwiz train --resume {run_name}` would repeat the same settings from {newest})"
    return FtwizError(what, fix="; ".join(fixes) + "; " + new_run)
