"""The probe's child process: a few real optimizer steps of one planned setup, then its memory and speed.

Run as ``python -m ftwiz.core.planner.probe_child`` with a JSON request on stdin (see
``ftwiz.core.planner.probe.measure_once``); the last line on stdout is the JSON result. It is a child
so that an out-of-memory error, a CUDA context or a leaked allocator cache cannot stay behind in the
caller (the wizard), and every attempt of the batch search starts from an empty device.

The model comes from ``ftwiz.core.train.model_setup.build_model`` and the steps from the transformers
Trainer with the run's own TrainingArguments and collator (``ftwiz.core.train.runner``), so the probe
measures what ``ftwiz train`` will run. Measured parts (bytes):
- CPU: ``runtime`` (the interpreter, torch and transformers before the model), ``model_load`` and
  ``training`` (what the steps added); the peak is the process's peak resident set (``ru_maxrss``).
- CUDA: through the hardware seam (``read_gpu_memory``): torch's peak allocated, the allocator's reserve
  above it, and NVML's view of the process (CUDA context, kernels, library workspaces included).
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any


def _peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


def _rows(request: dict, recipe, tokenizer) -> list[dict[str, list[int]]]:
    """micro_batch x steps rows, every one as long as the longest samples (the peak is set by those)."""
    seq_len, micro, steps = request["seq_len"], request["micro_batch"], request["steps"]
    if request["synthetic"]:
        rng = random.Random(0)
        high = len(tokenizer) - 1
        rows = []
        for _ in range(micro):
            ids = [rng.randint(0, high) for _ in range(seq_len)]
            rows.append({"input_ids": ids, "attention_mask": [1] * seq_len, "labels": list(ids)})
    else:
        from ftwiz.core.data import prepare_for_training

        measuring = recipe.model_copy(update={"cutoff_len": seq_len, "overlength": "truncate"})
        train = prepare_for_training(measuring, tokenizer).train
        lengths = [len(ids) for ids in train["input_ids"]]
        longest = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)[:micro]
        rows = [{k: train[i][k] for k in ("input_ids", "attention_mask", "labels")} for i in longest]
        rows = (rows * micro)[:micro]  # fewer samples than the micro-batch: repeat the longest
    return rows * steps


class _Timing:
    """Tokens/s over the steps after the first (the first allocates optimizer state and warms kernels)."""

    def __init__(self, device: str) -> None:
        from transformers import TrainerCallback

        timing = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if device == "cuda":
                    import torch

                    torch.cuda.synchronize()
                timing.marks.append((time.perf_counter(), state.num_input_tokens_seen))

        self.callback = Callback()
        self.marks: list[tuple[float, int]] = []
        self.started = time.perf_counter()

    def tokens_per_s(self) -> float | None:
        marks = self.marks if len(self.marks) > 1 else [(self.started, 0), *self.marks]
        if len(marks) < 2 or marks[-1][1] <= marks[0][1]:
            return None
        return (marks[-1][1] - marks[0][1]) / max(marks[-1][0] - marks[0][0], 1e-9)


def measure(request: dict[str, Any]) -> dict[str, Any]:
    """Run the steps; return peak bytes, parts, tokens/s, and whether CUDA ran out of memory."""
    import psutil
    import torch
    import transformers
    from ftwiz.core.events import EventBus
    from ftwiz.core.models import load_tokenizer
    from ftwiz.core.planner.plan import Plan
    from ftwiz.core.recipe import Recipe
    from ftwiz.core.rundir import RunDir
    from ftwiz.core.train.callbacks import CancelFlag, EventCallback
    from ftwiz.core.train.model_setup import build_model
    from ftwiz.core.train.trainer_args import data_collator, model_columns, training_arguments

    runtime = psutil.Process().memory_info().rss
    recipe = Recipe.model_validate(request["recipe"])
    plan = Plan.model_validate(request["plan"]).model_copy(update={
        "micro_batch": request["micro_batch"], "gradient_checkpointing": request["grad_ckpt"],
        "max_seq_len": request["seq_len"], "grad_accum": 1})
    model_dir = Path(request["model_dir"])
    transformers.set_seed(recipe.seed)
    tokenizer = load_tokenizer(model_dir, recipe)
    from datasets import Dataset

    dataset = model_columns(Dataset.from_list(_rows(request, recipe, tokenizer)))
    result: dict[str, Any] = {"oom": False, "error": None, "steps": 0, "tokens_per_s": None}
    timing = _Timing(plan.device)
    loaded = runtime
    try:
        model = build_model(model_dir, recipe, plan)
        loaded = psutil.Process().memory_info().rss
        with TemporaryDirectory(prefix="ftwiz-probe-") as tmp:
            args = replace(training_arguments(recipe, plan, RunDir(Path(tmp)), False), max_steps=request["steps"],
                           save_strategy="no", eval_strategy="no", logging_steps=1, warmup_steps=0,
                           gradient_accumulation_steps=1, num_train_epochs=1)
            trainer = transformers.Trainer(model=model, args=args, train_dataset=dataset,
                                           data_collator=data_collator(tokenizer, plan), processing_class=tokenizer)
            for printer in (transformers.trainer_callback.PrinterCallback,
                            transformers.trainer_callback.ProgressCallback):
                trainer.remove_callback(printer)
            # The run's own callback: the same step events, and the test-only out-of-memory seam.
            trainer.add_callback(EventCallback(EventBus(), device=plan.device, micro_batch=plan.micro_batch,
                                               cancel=CancelFlag()))
            trainer.add_callback(timing.callback)
            if plan.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            trainer.train()
            result["steps"] = trainer.state.global_step
    except torch.OutOfMemoryError as exc:
        result["oom"] = True
        result["error"] = str(exc).splitlines()[0]
    result["tokens_per_s"] = timing.tokens_per_s()
    peak_rss = _peak_rss_bytes()
    if plan.device == "cuda":
        from ftwiz.core.hardware.probe import read_gpu_memory
        from ftwiz.core.planner.measured import device_peak

        reading = read_gpu_memory(torch.cuda.current_device())
        result["peak_bytes"], result["parts"] = device_peak(reading)
        result["reading"] = reading.model_dump(mode="json")
    else:
        result["peak_bytes"] = peak_rss
        result["parts"] = {"runtime": runtime, "model_load": max(0, loaded - runtime),
                           "training": max(0, peak_rss - max(loaded, runtime))}
    result["parts"]["peak_rss"] = peak_rss
    return result


def main() -> int:
    request = json.loads(sys.stdin.read())
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # stdout's last line is the result: library prints go to stderr
    try:
        result = measure(request)
    except Exception as exc:  # reported to the parent as a failed attempt with its reason, not a traceback
        import traceback

        from ftwiz.core.errors import FtwizError

        traceback.print_exc()  # on stderr, which the parent keeps for its error message
        reason = exc.what if isinstance(exc, FtwizError) else f"{type(exc).__name__}: {exc}"
        result = {"oom": False, "error": reason, "steps": 0, "tokens_per_s": None, "peak_bytes": 0, "parts": {}}
    finally:
        sys.stdout = real_stdout
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
