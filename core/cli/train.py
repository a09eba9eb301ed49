"""``ftwiz train RECIPE.yaml [--resume RUN] [--events -]``: fine-tune with live progress, or resume.

Ctrl-C (SIGINT) or SIGTERM saves a checkpoint and exits with status 130; a second Ctrl-C stops at once.
With ``--events -`` the event stream goes to stdout as JSON lines (for the wizard or another parent) and
everything human goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", type=Path, help="recipe YAML (see `ftwiz recipe new`)")
    parser.add_argument("--resume", metavar="RUN", help="continue a cancelled or interrupted run (name or path)")
    parser.add_argument("--run-name", help="name of the run directory under runs/ (default: recipe or model+time)")
    parser.add_argument("--events", metavar="FILE", help="also write events as JSON lines to FILE ('-' = stdout)")
    parser.add_argument("--vram-gb", type=float, help="plan for this much GPU memory instead of the detected one")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (overrides the recipe)")
    parser.add_argument("--gpus", type=int, metavar="N",
                        help="train on N GPUs under accelerate (DDP, or FSDP when it does not fit one GPU)")
    parser.add_argument("--strategy", choices=["ddp", "fsdp", "deepspeed"], help="with --gpus: force a strategy")
    parser.add_argument("--cpu-procs", action="store_true", help="with --gpus: N CPU processes over gloo (testing)")


def _install_signal_handlers(cancel) -> None:
    def handler(signum, _frame):
        if cancel:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, the last checkpoint stays
        cancel.set(signal.Signals(signum).name)
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step, then stopping "
              "(press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_USER_ERROR
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.events import EventBus, JsonlSink
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.rundir import RunDir
    from ftwiz.core.train.callbacks import CancelFlag

    if args.recipe is None and not args.resume:
        raise FtwizError("give a recipe to train, or --resume RUN", fix="e.g. ftwiz train recipes/demo.yaml")
    if args.gpus is not None and args.gpus < 1:
        raise FtwizError(f"--gpus {args.gpus} must be at least 1", fix="e.g. --gpus 2")
    if args.gpus and args.gpus > 1:
        from ftwiz.core.scale.launch import distributed_train

        return distributed_train(args.recipe, args.gpus, cpu=args.cpu_procs, prefer=args.strategy,
                                 run_name=args.run_name, resume=args.resume, vram_gb=args.vram_gb)
    if args.resume:
        recipe = load_recipe(RunDir.resolve(args.resume).recipe)
        if args.recipe is not None and load_recipe(args.recipe) != recipe.model_copy(
                update={"run_name": load_recipe(args.recipe).run_name}):
            raise FtwizError(f"{args.recipe} differs from the recipe run '{args.resume}' was started with",
                             fix="resume without a recipe (ftwiz train --resume RUN), or train it as a new run")
    else:
        recipe = load_recipe(args.recipe)
    if args.max_steps is not None:
        if args.resume and args.max_steps != recipe.max_steps:
            raise FtwizError(f"--max-steps cannot change when resuming run '{args.resume}' (it started with "
                             f"max_steps {recipe.max_steps}): the learning-rate schedule depends on it",
                             fix="resume without --max-steps, or start a new run with the new length")
        if args.max_steps < 1:
            raise FtwizError(f"--max-steps {args.max_steps} must be at least 1", fix="e.g. --max-steps 100")
        recipe = recipe.model_copy(update={"max_steps": args.max_steps})

    bus = EventBus()
    to_stdout = args.events == "-"
    if args.events:
        bus.subscribe(JsonlSink(sys.stdout if to_stdout else args.events))
    real_stdout = sys.stdout
    if to_stdout:
        sys.stdout = sys.stderr  # stdout belongs to the event stream: any stray print goes to stderr
    progress = None
    if not to_stdout:
        from ftwiz.core.cli.train_progress import TrainProgress

        progress = TrainProgress()
        bus.subscribe(progress)
    cancel = CancelFlag()
    _install_signal_handlers(cancel)

    from ftwiz.core.train.runner import train

    try:
        result = train(recipe, events=bus, run_name=args.run_name, resume=args.resume, vram_gb=args.vram_gb,
                       cancel=cancel)
    except KeyboardInterrupt:
        print("stopped at once; the last saved checkpoint is kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = real_stdout
        if progress:
            progress.stop()
    if progress:
        progress.final(result)
    if result.status == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status == "completed" else EXIT_USER_ERROR
