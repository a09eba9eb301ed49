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

EPILOG = """examples:
  ftwiz train my-recipe.yaml                         train; Ctrl-C saves a checkpoint
  ftwiz train --resume my-run                        continue a cancelled run
  ftwiz train identity.yaml --var name=Aria --var author=Sam   fill {{name}}/{{author}} in the data
  ftwiz train my-recipe.yaml --max-steps 20          a quick trial run
  ftwiz train my-recipe.yaml --download              fetch the recipe's hub model first if it is not cached
"""


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
    parser.add_argument("--from", dest="from_run", metavar="RUN",
                        help="start from RUN's adapter (e.g. an SFT run before stage: dpo); sets adapter_name_or_path")
    parser.add_argument("--var", action="append", metavar="NAME=VALUE",
                        help="fill {{NAME}} placeholders in the data (repeatable; adds to the recipe's variables:)")
    parser.add_argument("--download", action="store_true",
                        help="if the recipe's hub model is not in the cache, download it first (see `ftwiz pull`)")
    parser.add_argument("--allow-placeholders", action="store_true",
                        help="train even if {{NAME}} placeholders stay unfilled (they are learned literally)")


def _install_signal_handlers(cancel, *, terminal: bool = True) -> None:
    def handler(signum, _frame):
        if cancel:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, the last checkpoint stays
        cancel.set(signal.Signals(signum).name)
        # Under a parent (the wizard sends SIGINT when the user presses c), "press Ctrl-C" is not what
        # that user did nor can do; the parent says what happens in its own words.
        hint = " (press Ctrl-C again to stop at once)" if terminal else ""
        print(f"\n{'stopping' if not terminal else signal.Signals(signum).name}: saving a checkpoint at the end "
              f"of this step, then stopping{hint}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _var_values(args: argparse.Namespace) -> dict[str, str]:
    """``--var NAME=VALUE`` as {NAME: VALUE} (:func:`ftwiz.core.recipe_inputs.parse_var_values`)."""
    from ftwiz.core.recipe_inputs import parse_var_values

    return parse_var_values(args.var)


def _with_variables(recipe, args: argparse.Namespace):
    """The recipe with ``--var NAME=VALUE`` added to its ``variables:`` and ``--allow-placeholders`` applied."""
    values = dict(recipe.variables) | _var_values(args)
    update: dict = {"variables": values}
    if args.allow_placeholders:
        update["allow_placeholders"] = True
    return recipe.model_copy(update=update)


def _check_inputs(recipe, args: argparse.Namespace, bus, cancel=None) -> None:
    """The model (downloaded with --download), dataset paths and placeholders; a problem is a ``failed`` event
    too, for a parent reading events. Ctrl-C (``cancel``) stops a download, keeping what arrived."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.events import Failed, Message
    from ftwiz.core.recipe_inputs import (
        check_dataset_paths,
        check_placeholders,
        check_recipe_columns,
        demo_model_note,
    )

    note = demo_model_note(recipe)
    if note:  # the terminal's progress and the wizard's log both show messages
        bus.emit(Message(level="warning", text=note))
    try:
        from ftwiz.core.cli.pull import ensure_model

        ensure_model(recipe.model_name_or_path, recipe.revision, download=getattr(args, "download", False),
                     vram_gb=args.vram_gb, to_stderr=True, cancelled=lambda: bool(cancel), ask=not args.events)
        check_dataset_paths(recipe, recipe_file=str(args.recipe))
        check_recipe_columns(recipe, args.recipe)  # a column the data lacks: named as the recipe's key, as validate does
        from ftwiz.core.chat_templates.validate import check_template_file

        check_template_file(recipe, str(args.recipe))  # a template: that does not compile stops here, not mid-run
        # a misspelled --var is refused (it would fill nothing); an unused name under variables: is only said
        from ftwiz.core.recipe import load_recipe

        stored = load_recipe(args.recipe).variables if recipe.system_filled and args.var else None
        for warning in check_placeholders(recipe, given=_var_values(args), recipe_file=str(args.recipe),
                                          stored_values=stored):
            bus.emit(Message(level="warning", text=warning))
        if recipe.adapter_name_or_path:  # an adapter that fits, in the chat format of the run it continues
            from ftwiz.core.train.adapter_check import check_recipe_adapter

            check_recipe_adapter(recipe, recipe_file=args.recipe)  # safetensors, fits the base model
    except FtwizError as exc:
        if args.events:
            bus.emit(Failed(reason=exc.headline(), fix=exc.fix))
        raise


def _report_already_completed(args: argparse.Namespace) -> bool:
    """A run given to --resume that already completed: say so, name its output and the next command, and
    train nothing (with --events -, one 'finished' event, so the wizard's train screen shows it done)."""
    from ftwiz.core.events import EventBus, JsonlSink
    from ftwiz.core.train.result import already_completed, finish_if_completed

    if already_completed(args.resume) is None:
        return False
    bus = EventBus()
    sink = JsonlSink(sys.stdout if args.events == "-" else args.events) if args.events else None
    if sink:
        bus.subscribe(sink)
    done = finish_if_completed(args.resume, bus)
    if sink:
        sink.close()
    from ftwiz.core.cli.console import err_console as out  # where train's progress and summary go
    from ftwiz.core.cli.train_progress import _export_quant

    out.print(f"run '{done.run_dir.name}' is already complete ({done.summary.get('steps')} steps): nothing was "
              f"trained or rewritten. Its {'adapter' if done.output_path.name == 'adapter' else 'model'}: "
              f"{done.output_path}", highlight=False, markup=False)  # a path with brackets printed as it is
    import shlex  # quoted: a runs folder with spaces gives a command that can be pasted

    out.print(f"next: ftwiz export {shlex.quote(str(done.run_dir))} --quant {_export_quant(done.run_dir)} --verify",
              highlight=False, markup=False)
    return True


def _fetch_for_ranks(args: argparse.Namespace) -> None:
    """The recipe's model, downloaded once here with --download (asked first, as a one-device run asks) before
    --gpus launches its ranks, which then find it in the cache; without the flag an uncached model is refused
    here, naming --download, not by every rank."""
    from ftwiz.core.cli.pull import ensure_model
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.rundir import RunDir

    recipe = load_recipe(RunDir.resolve(args.resume).recipe if args.resume else args.recipe)
    ensure_model(recipe.model_name_or_path, recipe.revision, download=args.download, vram_gb=args.vram_gb,
                 to_stderr=True, ask=True)


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_USER_ERROR
    from ftwiz.core.errors import FtwizError, Location
    from ftwiz.core.events import EventBus, JsonlSink
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.rundir import RunDir
    from ftwiz.core.train.cancel import CancelFlag  # transformers loads only once the inputs are checked

    if args.recipe is None and not args.resume:
        raise FtwizError("give a recipe to train, or --resume RUN", fix="e.g. ftwiz train recipes/demo.yaml")
    if args.resume and _report_already_completed(args):
        return EXIT_OK
    if args.gpus is not None and args.gpus < 1:
        raise FtwizError(f"--gpus {args.gpus} must be at least 1", fix="e.g. --gpus 2")
    if args.vram_gb is not None:  # refused here, before a run folder is made for it
        from ftwiz.core.planner.recommend import memory_budget

        memory_budget(None, args.vram_gb)
    if args.gpus and args.gpus > 1:
        if args.var or args.allow_placeholders:  # the launched processes read the recipe file alone
            raise FtwizError("--var and --allow-placeholders do not reach the processes --gpus launches",
                             where="--var", fix="put the values under `variables:` in the recipe (and "
                             "`allow_placeholders: true` there), then run with --gpus")
        if args.events:  # every rank would write its own stream into one file: a reader could not tell them apart
            raise FtwizError("--events does not reach the processes --gpus launches", where="--events",
                             fix="follow the run's progress in its folder (status.json, and the log the launcher "
                                 "prints), or train on one device with --events")
        _fetch_for_ranks(args)
        from ftwiz.core.scale.launch import distributed_train

        # each rank is an `ftwiz train` of its own: the flags that change the run go to every one of them
        passed = (["--max-steps", str(args.max_steps)] if args.max_steps is not None else []) + (
            ["--from", args.from_run] if args.from_run else [])
        return distributed_train(args.recipe, args.gpus, cpu=args.cpu_procs, prefer=args.strategy,
                                 run_name=args.run_name, resume=args.resume, vram_gb=args.vram_gb, passed=passed)
    if args.resume:
        recipe = load_recipe(RunDir.resolve(args.resume).recipe)
        from ftwiz.core.hub.pin import check_resume_pin

        check_resume_pin(RunDir.resolve(args.resume), recipe)  # the same weights, or a refusal saying how
        from ftwiz.core.recipe_inputs import with_filled_system  # the run stores its system prompt filled

        # the command that started the run, --resume added: its --var values are part of the recipe compared
        given = with_filled_system(_with_variables(load_recipe(args.recipe), args)) if args.recipe is not None \
            else None
        # a run started before ftwiz stored system_filled holds the same filled prompt without the mark
        same = given.model_copy(update={"system_filled": recipe.system_filled, "run_name": recipe.run_name}) \
            if given is not None else recipe
        from ftwiz.core.recipe_inputs import with_absolute_paths as absolute

        same, stored = absolute(same), absolute(recipe)  # the run stores its local paths absolute
        differ = [key for key in type(recipe).model_fields if getattr(same, key) != getattr(stored, key)]
        if differ:
            raise FtwizError(f"{args.recipe} differs from the recipe run '{args.resume}' was started with (in "
                             f"{', '.join(differ)})",
                             fix="resume without a recipe (ftwiz train --resume RUN), or train it as a new run")
    else:
        recipe = _with_variables(load_recipe(args.recipe), args)
    if getattr(args, "from_run", None):
        if args.resume:
            raise FtwizError("--from starts a new run from another run's adapter; it cannot change a run being resumed",
                             fix="resume without --from")
        from ftwiz.core.train.model_setup import resolve_adapter
        from pydantic import ValidationError

        adapter, recipe = str(resolve_adapter(args.from_run)), recipe.model_copy()
        try:  # the recipe's own rules (a full fine-tune would ignore the adapter), said of --from
            recipe.adapter_name_or_path = adapter
        except ValidationError as exc:
            raise FtwizError(f"--from {args.from_run}: " + exc.errors()[0]["msg"].removeprefix("Value error, "),
                             where=Location(file=args.recipe), fix="train without --from, or set finetuning_type: "
                             "lora (or qlora) in the recipe") from None
    if (args.var or args.allow_placeholders) and args.resume and _with_variables(recipe, args) != recipe:
        raise FtwizError("--var and --allow-placeholders cannot change the data of a run being resumed",
                         fix="resume without them, or start a new run with the new values")
    if args.max_steps is not None:
        if args.resume and args.max_steps != recipe.max_steps:
            raise FtwizError(f"--max-steps cannot change when resuming run '{args.resume}' (it started with "
                             f"max_steps {recipe.max_steps}): the learning-rate schedule depends on it",
                             fix="resume without --max-steps, or start a new run with the new length")
        from ftwiz.core.recipe_values import max_steps_problem  # the recipe's own rule for max_steps

        problem = max_steps_problem(args.max_steps)
        if problem:
            raise FtwizError(f"--max-steps {problem}", where="--max-steps", fix="e.g. --max-steps 100")
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
    _install_signal_handlers(cancel, terminal=not to_stdout)
    try:
        if not args.resume:  # before a run folder exists: a typo is one clear error, not a failed run
            _check_inputs(recipe, args, bus, cancel)
        from ftwiz.core.train.runner import is_main_process, train  # transformers and torch: ~10 s cold

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
    if result.status == "completed" and is_main_process():  # one fill, not one per distributed rank
        # training is over: Ctrl-C now skips the cache fill and ends the command (no 'saving a checkpoint', no 130)
        import contextlib

        def stop_filling(_signum, _frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, stop_filling)
        signal.signal(signal.SIGTERM, stop_filling)  # a parent stopping the finished child: no 'saving a checkpoint'
        with contextlib.suppress(KeyboardInterrupt):  # the export then parses the vocabulary itself
            _prepare_export(result)
    return EXIT_OK if result.status == "completed" else EXIT_USER_ERROR


def _prepare_export(result) -> None:
    """Fill the export's vocabulary cache from the tokenizer just saved: ~0.5 s here, after minutes of
    training, instead of in the first ``ftwiz export`` (a third of a one-second F16 export of a 0.5B model)."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.vocab_warm import warm_vocab_cache
    from ftwiz.core.rundir import RunDir

    if result.output_path is None:
        return
    output = Path(result.output_path)
    try:
        config_dir = output if (output / "config.json").is_file() else RunDir(Path(result.run_dir)).base_model_dir()
    except (OSError, ValueError, FtwizError):  # an unreadable run card: the export reports it, with its fix
        return
    if config_dir is not None:  # an adapter has no config.json: the rows are its base model's
        warm_vocab_cache(output, config_dir)
