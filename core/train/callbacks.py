"""Trainer callbacks: turn the Trainer's logs into ftwiz events, and honour a cancel request.

The Trainer stays in charge of the loop; these callbacks only observe (events, memory, throughput) or
ask it to save and stop (cancel), or to stop without saving (a loss that became NaN or infinite, see
``ftwiz.core.train.divergence``). Work per step is a handful of counters, so the event stream costs
well under the 3% the train-overhead benchmark allows.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from ftwiz.core.events import CheckpointSaved, Eval, EventBus, Step
from ftwiz.core.train.cancel import CancelFlag  # where callers have always found it
from ftwiz.core.train.divergence import LossWatch, hold_back, trainable_weights_finite
from transformers import TrainerCallback

# Test-only seam: raise the exception CUDA raises when the micro-batch is above this value, so the
# out-of-memory back-off path runs on machines without a GPU. Never set by the product.
TEST_OOM_ENV = "FTWIZ_TEST_OOM_ABOVE_MICRO_BATCH"


def memory_snapshot(device: str) -> dict[str, int | None]:
    """Allocator numbers and the device's own view on CUDA; resident set size on CPU."""
    import psutil

    snap: dict[str, int | None] = {"rss_bytes": psutil.Process().memory_info().rss}
    if device == "cuda":
        import torch

        snap |= {"mem_allocated_bytes": torch.cuda.memory_allocated(),
                 "mem_reserved_bytes": torch.cuda.memory_reserved(),
                 "mem_peak_bytes": torch.cuda.max_memory_reserved()}
        from ftwiz.core.hardware.probe import read_gpu_memory

        # the hardware seam finds the NVML device by UUID (NVML ignores CUDA_VISIBLE_DEVICES) and records
        # NVML failures (ROCm, restricted containers) instead of raising: allocator numbers still stand
        device_used = read_gpu_memory(torch.cuda.current_device()).nvml_device_used_bytes
        if device_used is not None:
            snap["mem_device_used_bytes"] = device_used
    return snap


class EventCallback(TrainerCallback):
    """Emit Step / Eval / CheckpointSaved events, stop cleanly when cancelled, stop unsaved when diverged.

    ``watch`` sees every logged loss (a resumed run passes one seeded with its earlier steps); after
    training, ``watch.diverged`` says whether the run diverged (its weights must not become the result).
    """

    def __init__(self, bus: EventBus, *, device: str, micro_batch: int, cancel: CancelFlag,
                 on_checkpoint=None, watch: LossWatch | None = None) -> None:
        self.bus = bus
        self.watch = watch if watch is not None else LossWatch()
        self.device = device
        self.micro_batch = micro_batch
        self.cancel = cancel
        self.on_checkpoint = on_checkpoint
        self._last_time = 0.0
        self._last_tokens = 0
        self._last_step = 0
        self._started = 0.0
        self._start_step = 0
        self._oom_cap = int(os.environ[TEST_OOM_ENV]) if os.environ.get(TEST_OOM_ENV) else None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = self._last_time = time.perf_counter()
        self._start_step = self._last_step = state.global_step
        self.watch.rewind(state.global_step)
        self._last_tokens = state.num_input_tokens_seen
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()

    def on_step_begin(self, args, state, control, **kwargs):
        if self._oom_cap is not None and self.micro_batch > self._oom_cap:
            import torch

            raise torch.OutOfMemoryError(
                f"CUDA out of memory (test cap: micro-batch {self.micro_batch} > {self._oom_cap})")

    def on_step_end(self, args, state, control, **kwargs):
        self._stop_if_cancelled(control)
        self._check_before_saving(control)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._check_before_saving(control)
        if self.watch.diverged is not None:  # the loop stopped; save_strategy: epoch would save it here
            hold_back(control)

    @staticmethod
    def _check_before_saving(control) -> None:
        # The Trainer logs before it saves in the same step: a save step is always a log step, so a loss
        # that became NaN since the last log is seen (and the save held back) before it is written.
        if control.should_save:
            control.should_log = True

    def _stop_if_cancelled(self, control) -> None:
        if self.cancel:
            control.should_save = True
            control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        loss = float(logs["loss"])
        model = kwargs.get("model")  # a non-finite loss with finite weights: the fp16 GradScaler skipped the step
        diverged = self.watch.observe(state.global_step, loss, weights_finite=lambda: trainable_weights_finite(model))
        now = time.perf_counter()
        elapsed = max(now - self._last_time, 1e-9)
        steps = max(state.global_step - self._last_step, 1)
        tokens = state.num_input_tokens_seen - self._last_tokens
        samples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps
        done = state.global_step - self._start_step
        eta = (now - self._started) / done * (state.max_steps - state.global_step) if done else None
        self.bus.emit(Step(
            step=state.global_step, total_steps=state.max_steps, epoch=float(state.epoch or 0.0),
            loss=_finite(loss), lr=float(logs.get("learning_rate", 0.0)),  # None: NaN/inf, see watch
            grad_norm=_finite(logs.get("grad_norm")), tokens_per_s=tokens / elapsed if tokens else None,
            tokens_seen=int(state.num_input_tokens_seen),
            samples_per_s=samples / elapsed, eta_s=eta, **preference_figures(logs), **memory_snapshot(self.device)))
        self._last_time, self._last_tokens, self._last_step = now, state.num_input_tokens_seen, state.global_step
        self._stop_if_cancelled(control)  # a cancel seen while logging still saves this very step
        if diverged is not None:  # ...unless the weights are NaN: stop here, no checkpoint, no eval
            hold_back(control)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        loss = metrics.get("eval_loss")
        if loss is not None:
            figures = preference_figures(metrics, prefix="eval_")
            self.bus.emit(Eval(step=state.global_step, loss=float(loss), perplexity=_perplexity(loss),
                               rewards_margins=figures.get("rewards_margins"),
                               rewards_accuracy=figures.get("rewards_accuracy")))

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.bus.emit(CheckpointSaved(step=state.global_step, path=str(path)))
        if self.on_checkpoint:
            self.on_checkpoint(state.global_step)


# TRL's log keys (DPOTrainer, KTOTrainer, ORPOTrainer) -> Step fields
PREFERENCE_LOGS = {"rewards/chosen": "rewards_chosen", "rewards/rejected": "rewards_rejected",
                   "rewards/margins": "rewards_margins", "rewards/accuracies": "rewards_accuracy"}


def preference_figures(logs: dict, prefix: str = "") -> dict[str, float]:
    """The preference stages' live figures found in a Trainer log (empty for SFT)."""
    found = {}
    for key, name in PREFERENCE_LOGS.items():
        value = _finite(logs.get(prefix + key))
        if value is not None:
            found[name] = value
    return found


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _perplexity(loss: float) -> float:
    return math.exp(min(float(loss), 50.0))
