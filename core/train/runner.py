"""Run a recipe to a trained adapter: data, plan, model, Trainer, events, checkpoints, resume, back-off.

The transformers Trainer runs the loop; this module decides everything around it:
- the run directory (``ftwiz.core.rundir``) is written before the first step, so a crash leaves a
  resumable record, and ``status.json`` always tells the truth (running / completed / cancelled / failed);
- a resume continues from the last checkpoint (optimizer, scheduler, RNG and data position come from
  the Trainer's checkpoint) and refuses when the recipe, data or base model changed;
- on CUDA out-of-memory the micro-batch halves and accumulation doubles (same effective batch), training
  resumes from the last checkpoint, and a back-off event says so; at micro-batch 1 it gives up clearly.
The module is launchable under ``accelerate launch`` unchanged: the Trainer handles the ranks.
"""

from __future__ import annotations

import gc
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ftwiz.core.atomic import atomic_dir, write_text_atomic
from ftwiz.core.chat_templates.record import adopt_template, write_template_files
from ftwiz.core.errors import CancelledByUser, FtwizError
from ftwiz.core.events import BackOff, EventBus, Failed, Finished, Message, Started, Step
from ftwiz.core.planner.plan import Plan
from ftwiz.core.recipe import Recipe, dump_recipe, load_recipe
from ftwiz.core.recipe_inputs import with_absolute_paths, with_filled_system
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.callbacks import CancelFlag, EventCallback
from ftwiz.core.train.checkpoint_space import (
    disk_full_in_training,
    drop_incomplete_checkpoints,
    require_checkpoint_space,
)
from ftwiz.core.train.divergence import LossWatch, divergence_error
from ftwiz.core.train.fingerprint import check_resumable, fingerprint, recipe_fingerprint
from ftwiz.core.train.result import TrainResult, finish_if_completed
from ftwiz.core.train.stages import check_stage_data, is_preference, preference_trainer, stage_config
from ftwiz.core.train.tracking import check_trackers, tracking_callbacks
from ftwiz.core.train.trainer_args import data_collator, model_columns, training_arguments, training_kwargs

OOM_SUGGESTIONS = ("lower cutoff_len (shorter samples), use finetuning_type: qlora, enable "
                   "gradient_checkpointing, or pick a smaller model; `ftwiz plan RECIPE` shows what fits")


class _Recorder:
    """Keeps what the summary needs from the event stream (first/last losses, throughput, peak memory)."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.evals: list[float] = []
        self.peak = 0

    def __call__(self, event) -> None:
        if event.type == "step":
            # a resumed run repeats the steps after its checkpoint: the new ones replace the old
            while self.steps and self.steps[-1].step >= event.step:
                self.steps.pop()
            self.steps.append(event)
            self.peak = max(self.peak, event.mem_peak_bytes or 0, event.rss_bytes or 0)
        elif event.type == "eval":
            self.evals.append(event.loss)

    def preload(self, events_path: Path) -> None:
        """A resumed run's summary covers the whole run: the steps and evals before the resume, from
        events.jsonl (a torn last line from a kill is skipped)."""
        from ftwiz.core.events import read_events

        if not events_path.is_file():
            return
        try:
            for event in read_events(events_path):
                self(event)
        except (ValueError, OSError):
            return


def is_main_process() -> bool:
    """Rank 0 under ``accelerate launch`` / torchrun (or a plain single process): the one that reports and writes."""
    return os.environ.get("RANK", "0") == "0"


def write_status(run: RunDir, state: str, **extra: Any) -> None:
    if not is_main_process():
        return
    payload = {"state": state, "updated": time.time(), "pid": os.getpid(), **extra}
    write_text_atomic(run.status, json.dumps(payload, indent=2))


def default_run_name(recipe: Recipe) -> str:
    from ftwiz.core.paths import safe_name

    base = Path(recipe.model_name_or_path.rstrip("/")).name or "model"
    return f"{safe_name(base)}-{datetime.now():%Y%m%d-%H%M%S}"


def _base_revision(model_dir: Path, recipe: Recipe) -> str | None:
    # Inside the Hugging Face cache a snapshot folder is named by its commit hash: the exact weights, even
    # when the recipe named a branch or tag (what `train --resume` checks against, see ftwiz.core.hub.pin).
    if model_dir.parent.name == "snapshots":
        return model_dir.name
    return recipe.revision


def open_run(recipe: Recipe, *, run_name: str | None, resume: str | None) -> tuple[RunDir, Recipe, bool]:
    """The run directory to use and whether it resumes. A completed run is never trained over."""
    from ftwiz.core.paths import check_run_name, runs_dir

    if resume:
        run = RunDir.resolve(resume)
        stored = load_recipe(run.recipe)
        return run, stored, True
    if not (run_name or recipe.run_name) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise FtwizError("several processes were launched without a run name, so each would pick its own",
                         fix="pass --run-name NAME (ftwiz train --gpus N does this for you)")
    name = check_run_name(run_name or recipe.run_name or default_run_name(recipe), flag=bool(run_name))
    run = RunDir(runs_dir() / name)
    recipe = with_filled_system(recipe).model_copy(update={"run_name": name})  # stored, trained and served filled
    if run.recipe.exists() and run.state() == "completed":
        raise FtwizError(f"run '{name}' already completed at {run.root}",
                         fix=f"train under a new name (--run-name {name}-2) or delete {run.root}")
    return run, recipe, run.recipe.exists()  # a run started before (failed, cancelled) continues


def _last_checkpoint(run: RunDir) -> str | None:
    steps = run.checkpoint_steps()
    for step in reversed(steps):
        path = run.checkpoints / f"checkpoint-{step}"
        if (path / "trainer_state.json").exists():  # a SIGKILL mid-save leaves a folder without it
            return str(path)
    return None


def _free_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _summary(recorder: _Recorder, started: float, trainable: int, total: int, prepared_stats: dict) -> dict:
    steps = recorder.steps
    rates = [s.tokens_per_s for s in steps if s.tokens_per_s]
    return {
        "steps": steps[-1].step if steps else 0,
        "train_loss_first": steps[0].loss if steps else None,
        "train_loss_last": steps[-1].loss if steps else None,
        "eval_loss_first": recorder.evals[0] if recorder.evals else None,
        "eval_loss_last": recorder.evals[-1] if recorder.evals else None,
        "tokens_per_s": sum(rates) / len(rates) if rates else None,
        "seconds": round(time.time() - started, 1),
        "peak_memory_bytes": recorder.peak or None,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "train_samples": prepared_stats.get("kept", {}).get("train"),
    }


def train(recipe: Recipe, *, events: EventBus | None = None, run_name: str | None = None,
          resume: str | None = None, hardware=None, vram_gb: float | None = None,
          cancel: CancelFlag | None = None) -> TrainResult:
    """Train ``recipe``; every outcome is an event, a status.json state and (on failure) an exception."""
    bus = events or EventBus()
    cancel = cancel if cancel is not None else CancelFlag()  # (an unset flag is falsy)
    if resume and (done := finish_if_completed(resume, bus)) is not None:  # never trained over
        return done
    as_written = None if resume else recipe  # open_run fills the system prompt; the data step needs it as written
    run, recipe, resuming = open_run(recipe, run_name=run_name, resume=resume)
    run.root.mkdir(parents=True, exist_ok=True)
    from ftwiz.core.events import JsonlSink

    if not is_main_process():
        bus = EventBus()  # other ranks train silently: events, status and files come from rank 0 only
    sink = JsonlSink(run.events) if is_main_process() else None
    if sink:
        bus.subscribe(sink)
    recorder = _Recorder()
    if resuming:
        recorder.preload(run.events)
    bus.subscribe(recorder)
    step = 0
    try:
        result = _train(recipe, run, resuming, bus, cancel, hardware, vram_gb, recorder, as_written)
        step = result.summary.get("steps", 0)
        return result
    except CancelledByUser as exc:
        write_status(run, "cancelled", message=exc.what)
        bus.emit(Finished(status="cancelled", summary={"message": exc.what}))
        return TrainResult(run.root, "cancelled", None, {"message": exc.what})
    except FtwizError as exc:
        write_status(run, "failed", message=exc.what, fix=exc.fix)
        bus.emit(Failed(reason=exc.what, fix=exc.fix, step=recorder.steps[-1].step if recorder.steps else step))
        raise
    except BaseException as exc:  # a crash is a failure with a reason, never a silent exit
        full = disk_full_in_training(exc, run.root, run.checkpoints, None)  # a half-saved checkpoint goes
        if full is not None:
            write_status(run, "failed", message=full.what, fix=full.fix)
            bus.emit(Failed(reason=full.what, fix=full.fix, step=recorder.steps[-1].step if recorder.steps else step))
            raise full from exc
        reason = f"{type(exc).__name__}: {exc}"
        write_status(run, "failed", message=reason)
        bus.emit(Failed(reason=reason, fix="see the traceback above; the last checkpoint is kept for --resume",
                        step=recorder.steps[-1].step if recorder.steps else None))
        raise
    finally:
        bus.unsubscribe(recorder)
        if sink:
            bus.unsubscribe(sink)  # the caller's bus lives on (the demo exports next); this run's file does not
            sink.close()


def _train(recipe: Recipe, run: RunDir, resuming: bool, bus: EventBus, cancel: CancelFlag, hardware,
           vram_gb: float | None, recorder: _Recorder, as_written: Recipe | None = None) -> TrainResult:
    import torch
    import transformers
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.models import load_tokenizer, resolve_model
    from ftwiz.core.planner import plan_recipe
    from ftwiz.core.train.model_setup import build_model, trainable_parameters
    from ftwiz.core.versions import stack_versions

    started = time.time()
    check_trackers(recipe.report_to)
    write_status(run, "running", message="preparing data")
    from ftwiz.core.hub.pin import pinned_commit

    # a resume trains on the commit the run started with, even if a later pull moved the cache's main
    pinned = pinned_commit(run) if resuming and not recipe.revision else None
    model_dir = resolve_model(recipe.model_name_or_path, revision=recipe.revision or pinned)
    tokenizer = load_tokenizer(model_dir, recipe)
    template = adopt_template(tokenizer, recipe, warn=lambda text: bus.emit(Message(level="warning", text=text)))
    packing = recipe.packing or recipe.stage == "pt"  # continued pre-training packs raw text
    if packing and is_preference(recipe.stage):
        packing = False  # TRL's preference trainers pad each pair; packing would change nothing but the stats
        bus.emit(Message(level="warning", text=f"packing: true is ignored for stage {recipe.stage} (pairs: padded)"))
    written = recipe if as_written is None else as_written  # filled once: a value's {{x}} stays literal
    as_trained = {"packing": packing, "system": written.system, "system_filled": written.system_filled}
    prepared = prepare_for_training(recipe.model_copy(update=as_trained), tokenizer, events=bus,
                                    refuse_placeholders=True, system_filled=as_written is None)
    check_stage_data(recipe.stage, prepared.splits.get("train", []))
    current = fingerprint(recipe, model_dir, prepared.dataset_hash, prepared.template_hash)
    if resuming:
        card = run.read_json(run.run_card) if run.run_card.exists() else {}
        # the recipe part is compared below from the stored recipe.yaml, hashed by today's code: a card
        # written by an older ftwiz may hold a recipe hash over fields that were different then
        stored = {k: v for k, v in card.get("fingerprint", {}).items() if k != "recipe"}
        check_resumable(stored, current, run.name)
        # stored paths are absolute (relative in a run stored before): both sides compared resolved alike
        was, now = (recipe_fingerprint(with_absolute_paths(r)) for r in (load_recipe(run.recipe), recipe))
        check_resumable({"recipe": was}, {"recipe": now}, run.name)
    if resuming and run.plan.exists():
        plan = Plan.model_validate(run.read_json(run.plan))
    else:
        if hardware is None and vram_gb is None:
            from ftwiz.core.hardware.detect import detect

            hardware = detect(probe_backends=False)
        plan = plan_recipe(recipe, hardware, vram_gb=vram_gb,
                           dataset_lengths=prepared.stats.get("train", {}).get("lengths"))
        sharded = int(os.environ.get("WORLD_SIZE", "1")) > 1 and (
            os.environ.get("ACCELERATE_USE_FSDP") == "true" or os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true")
        if not plan.fits and not sharded:  # sharded plans were sized per GPU by the launcher
            raise FtwizError("this job does not fit in memory: " + "; ".join(plan.warnings),
                             fix=OOM_SUGGESTIONS)
    main = is_main_process()
    if not resuming:
        _warn_if_not_exportable(model_dir, recipe, run, bus)
    if main:
        write_text_atomic(run.recipe, dump_recipe(with_absolute_paths(recipe)))  # retrained anywhere: same files
        write_text_atomic(run.plan, plan.model_dump_json(indent=2))
        prepared.save_splits(run.data)
    card = {
        "run_name": run.name, "created": datetime.now().isoformat(timespec="seconds"),
        "base_model": str(model_dir.resolve()), "base_model_name": recipe.model_name_or_path,
        "base_model_revision": _base_revision(model_dir, recipe), "method": plan.method,
        "dataset_hash": prepared.dataset_hash, "template_hash": prepared.template_hash,
        "fingerprint": current, "versions": stack_versions(), "data_stats": {
            k: v for k, v in prepared.stats.items() if k not in ("train", "validation")},
        **template.card_fields(),  # the chat template training rendered with: export, chat and eval read it
    }
    if main:
        write_text_atomic(run.run_card, json.dumps(card, indent=2))
    if cancel:
        raise CancelledByUser("cancelled before training started")

    transformers.set_seed(recipe.seed)
    model = build_model(model_dir, recipe, plan)
    if packing:
        from ftwiz.core.train.packing import check_isolation

        check_isolation(model, dtype="fp32" if plan.device == "cpu" else plan.dtype)
    trainable, total = trainable_parameters(model)
    if main:
        require_checkpoint_space(run.root, trainable if plan.method != "full" else total)
    train_ds = model_columns(prepared.train)
    eval_ds = model_columns(prepared.validation) if prepared.validation is not None and len(prepared.validation) else None
    if is_preference(recipe.stage):  # TRL renders and tokenizes the pairs itself, with the run's template
        from ftwiz.core.data.preference import preference_dataset
        from ftwiz.core.data.tokenize import template_kwargs_of

        kwargs = {"template": template.template, "template_kwargs": template_kwargs_of(recipe)}  # thoughts as SFT
        train_ds = preference_dataset(prepared.splits["train"], recipe.stage, **kwargs)
        eval_ds = preference_dataset(prepared.splits.get("validation", []), recipe.stage, **kwargs)
    checkpoint = _last_checkpoint(run) if resuming else None
    if resuming and checkpoint is None and run.checkpoint_steps():
        bus.emit(Message(level="warning", text="the newest checkpoint is incomplete; starting from the last good one"))
    if resuming and main and drop_incomplete_checkpoints(run.checkpoints):  # killed mid-save: space back
        bus.emit(Message(level="warning", text="removed a checkpoint that was interrupted while saving"))

    while True:
        if is_preference(recipe.stage):
            args = stage_config(recipe, training_kwargs(recipe, plan, run, eval_ds is not None), plan.max_seq_len)
            trainer = preference_trainer(recipe, model, tokenizer, args, train_ds, eval_ds)
        else:
            args = training_arguments(recipe, plan, run, eval_ds is not None)
            trainer = transformers.Trainer(
                model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                data_collator=data_collator(tokenizer, plan, packing), processing_class=tokenizer)
        callback = EventCallback(bus, device=plan.device, micro_batch=plan.micro_batch, cancel=cancel,
                                 on_checkpoint=lambda step: write_status(run, "running", step=step),
                                 watch=LossWatch.from_steps(recorder.steps))
        trainer.add_callback(callback)
        if main:
            for tracker in tracking_callbacks(recipe.report_to, run.root, dump_recipe(recipe),
                                              plan.model_dump_json(indent=2)):
                trainer.add_callback(tracker)
        for printer in (transformers.trainer_callback.PrinterCallback, transformers.trainer_callback.ProgressCallback):
            trainer.remove_callback(printer)  # our events are the one report; no stray prints on stdout
        resumed_step = int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0
        bus.emit(Started(run_dir=str(run.root), method=plan.method, total_steps=_total_steps(trainer, train_ds),
                         resumed_from_step=resumed_step, device=plan.device, micro_batch=plan.micro_batch,
                         grad_accum=plan.grad_accum))
        write_status(run, "running", step=resumed_step)
        try:
            if eval_ds is not None and checkpoint is None and not recorder.evals:
                trainer.evaluate()  # the starting point, so "eval loss falls" is a measured claim
            trainer.train(resume_from_checkpoint=checkpoint)
            break
        except torch.OutOfMemoryError as exc:
            if plan.micro_batch == 1:
                raise FtwizError(f"out of memory even at micro-batch 1 ({str(exc).splitlines()[0]})",
                                 fix=OOM_SUGGESTIONS) from None
            old = plan.micro_batch
            plan = plan.model_copy(update={"micro_batch": old // 2, "grad_accum": plan.grad_accum * 2})
            if main:
                write_text_atomic(run.plan, plan.model_dump_json(indent=2))
            checkpoint = _last_checkpoint(run)
            step = int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0
            bus.emit(BackOff(step=step, reason="CUDA out of memory", old_micro_batch=old,
                             new_micro_batch=plan.micro_batch, new_grad_accum=plan.grad_accum))
            del trainer
            model.zero_grad(set_to_none=True)
            _free_memory(plan.device)

    if callback.watch.diverged is not None:  # NaN weights are never saved, called completed, or exported
        raise divergence_error(callback.watch.diverged, recipe=recipe, plan=plan, run_name=run.name,
                               checkpoints=run.checkpoints)
    if cancel:
        step = trainer.state.global_step
        message = f"cancelled ({cancel.signal_name}) at step {step}; checkpoint kept, resume with " \
                  f"`ftwiz train --resume {run.name}`"
        write_status(run, "cancelled", step=step, message=message)
        summary = _summary(recorder, started, trainable, total, prepared.stats) | {"message": message}
        bus.emit(Finished(status="cancelled", summary=summary))
        return TrainResult(run.root, "cancelled", None, summary)

    output = run.model if plan.method == "full" else run.adapter
    if main:
        with atomic_dir(output, overwrite=True) as tmp:
            trainer.model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            write_template_files(tmp, template.template)
    summary = _summary(recorder, started, trainable, total, prepared.stats)
    write_status(run, "completed", step=trainer.state.global_step, output=str(output))
    bus.emit(Finished(status="completed", output_path=str(output), summary=summary))
    return TrainResult(run.root, "completed", output, summary)


def _warn_if_not_exportable(model_dir: Path, recipe: Recipe, run: RunDir, bus: EventBus) -> None:
    """Say before training, not after hours of it, when the result could not become a GGUF."""
    from ftwiz.core.export.preflight import check_exportable

    check = check_exportable(model_dir, quants=list(recipe.export_quant), out_dir=run.root,
                             needs_merge=recipe.finetuning_type != "full")
    for problem, fix in zip(check.problems, check.fixes + [""] * len(check.problems), strict=False):
        bus.emit(Message(level="warning", text=f"export preflight: {problem}" + (f" ({fix})" if fix else "")))


def _total_steps(trainer, train_ds) -> int:
    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        return args.max_steps
    import math

    batches = len(trainer.get_train_dataloader())  # per process: DDP splits the data across ranks
    per_epoch = math.ceil(batches / args.gradient_accumulation_steps)
    return max(1, int(math.ceil(per_epoch * args.num_train_epochs)))
