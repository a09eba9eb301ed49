"""A stand-in for ``ftwiz train RECIPE --events -`` that the wizard tests drive as a real child process.

It speaks the real event contract (``ftwiz.core.events`` models, one JSON line each on stdout), keeps a
real run directory (recipe.yaml, status.json, checkpoints/) and handles SIGINT the way the trainer does:
save a checkpoint, emit ``finished(status="cancelled")``, exit 130. Steps are slowed by ``--sleep`` so a
test can press keys while it runs. Usage:

    python tests/tui/fake_train.py RECIPE.yaml [--resume RUN] [--steps N] [--sleep S] [--crash-at N]
                                  [--fail-at N] [--diverge-at N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from ftwiz.core.events import CheckpointSaved, Eval, Failed, Finished, Started, Step
from ftwiz.core.paths import runs_dir
from ftwiz.core.rundir import RunDir

stop = False


def _on_sigint(_signum: int, _frame: object) -> None:
    global stop
    stop = True


FIXED_TIME: float | None = None


def emit(event: object) -> None:
    if FIXED_TIME is not None:  # snapshot tests: identical screens run after run
        event.time = FIXED_TIME  # type: ignore[attr-defined]
    sys.stdout.write(event.to_json() + "\n")  # type: ignore[attr-defined]
    sys.stdout.flush()


def write_status(run: RunDir, state: str, step: int) -> None:
    run.status.write_text(json.dumps({"state": state, "step": step}), encoding="utf-8")


def save_checkpoint(run: RunDir, step: int) -> Path:
    path = run.checkpoints / f"checkpoint-{step}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--resume")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--crash-at", type=int, default=None)
    parser.add_argument("--fail-at", type=int, default=None)
    parser.add_argument("--diverge-at", type=int, default=None, help="the loss becomes NaN at this step")
    parser.add_argument("--linger", type=float, default=0.0, help="seconds between 'cancelled' and exiting")
    parser.add_argument("--preference", action="store_true", help="steps carry DPO's rewards/* figures")
    parser.add_argument("--fixed-time", type=float, default=None, help="stamp every event with this time")
    args = parser.parse_args()
    global FIXED_TIME
    FIXED_TIME = args.fixed_time
    signal.signal(signal.SIGINT, _on_sigint)
    import yaml

    # as the real trainer: a preference stage in the recipe makes the steps carry rewards/* figures
    stage = (yaml.safe_load(Path(args.recipe).read_text(encoding="utf-8")) or {}).get("stage", "sft")
    args.preference = args.preference or stage in ("dpo", "orpo", "kto")

    run = RunDir.resolve(args.resume) if args.resume else RunDir(runs_dir() / "fake-run")
    if not args.resume:
        if run.root.exists():
            shutil.rmtree(run.root)
        run.root.mkdir(parents=True)
        shutil.copyfile(args.recipe, run.recipe)
    first = (run.checkpoint_steps() or [0])[-1] + 1 if args.resume else 1
    write_status(run, "running", first - 1)
    emit(Started(run_dir=str(run.root), method="lora", total_steps=args.steps, resumed_from_step=first - 1,
                 micro_batch=8, grad_accum=1))
    for step in range(first, args.steps + 1):
        if args.crash_at == step:
            print("Traceback (most recent call last):\nRuntimeError: simulated crash", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
        if args.fail_at == step:
            write_status(run, "failed", step)
            emit(Failed(reason="out of memory even at micro-batch 1", fix="use a shorter cutoff_len", step=step))
            return 2
        if args.diverge_at == step:
            return diverge(run, args, step)
        time.sleep(args.sleep)
        loss = 3.0 * math.exp(-step / 8) + 0.5
        # DPO-shaped figures: the chosen answers' reward rises, the rejected ones' falls
        prefs = ({"rewards_chosen": 0.01 * step, "rewards_rejected": -0.02 * step, "rewards_margins": 0.03 * step,
                  "rewards_accuracy": min(1.0, 0.5 + 0.05 * step)} if args.preference else {})
        emit(Step(step=step, total_steps=args.steps, epoch=step / args.steps, loss=loss, lr=3e-3,
                  tokens_per_s=1000.0, eta_s=(args.steps - step) * args.sleep, rss_bytes=500 * 1024**2, **prefs))
        if step % 5 == 0:
            emit(Eval(step=step, loss=loss + 0.1, perplexity=math.exp(loss + 0.1),
                      rewards_margins=prefs.get("rewards_margins"), rewards_accuracy=prefs.get("rewards_accuracy")))
        if stop:
            emit(CheckpointSaved(step=step, path=str(save_checkpoint(run, step))))
            write_status(run, "cancelled", step)
            emit(Finished(status="cancelled", output_path=str(run.root)))
            time.sleep(args.linger)  # the real trainer still flushes files after reporting
            return 130
    adapter = run.adapter
    adapter.mkdir(parents=True, exist_ok=True)
    write_status(run, "completed", args.steps)
    emit(Finished(status="completed", output_path=str(adapter), summary={"final_loss": loss}))
    return 0


def diverge(run: RunDir, args: argparse.Namespace, step: int) -> int:
    """What the trainer streams when the loss becomes NaN: the step (loss null), then the failure."""
    from types import SimpleNamespace

    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.train.divergence import Divergence, divergence_error

    emit(Step(step=step, total_steps=args.steps, epoch=step / args.steps, loss=float("nan"), lr=3e-3))
    last = 3.0 * math.exp(-(step - 1) / 8) + 0.5
    error = divergence_error(Divergence(step, float("nan"), step - 1, last), recipe=load_recipe(args.recipe),
                             plan=SimpleNamespace(method="lora", dtype="bf16", device="cuda"),
                             run_name=run.name, checkpoints=run.checkpoints)
    write_status(run, "failed", step)
    emit(Failed(reason=error.what, fix=error.fix, step=step))
    return 2


if __name__ == "__main__":
    sys.exit(main())
