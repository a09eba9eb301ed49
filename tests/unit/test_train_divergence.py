"""Divergence detection: a NaN/inf training loss stops the Trainer unsaved; a NaN grad_norm alone does not."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from ftwiz.core.events import EventBus, parse_event
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.train.callbacks import CancelFlag, EventCallback
from ftwiz.core.train.divergence import Divergence, LossWatch, divergence_error, good_checkpoint
from transformers import TrainerControl, TrainerState

NAN, INF = float("nan"), float("inf")


def test_the_first_non_finite_loss_is_the_divergence_and_stays_it() -> None:
    watch = LossWatch()
    assert watch.observe(1, 2.5) is None and watch.observe(2, 2.31) is None
    diverged = watch.observe(3, NAN)
    assert (diverged.step, diverged.kind, diverged.last_finite_step, diverged.last_finite_loss) == (3, "nan", 2, 2.31)
    assert watch.observe(4, 1.0) is diverged  # a finite loss after it does not undo NaN weights
    assert LossWatch().observe(1, -INF).kind == "-inf"
    first = LossWatch().observe(1, INF)
    assert first.kind == "inf" and first.last_finite_step is None


def test_a_resumed_run_knows_its_earlier_losses_but_not_those_after_the_checkpoint() -> None:
    steps = [SimpleNamespace(step=s, loss=v) for s, v in ((1, 3.0), (2, 2.0), (3, 1.5), (4, None))]
    watch = LossWatch.from_steps(steps)  # the first session diverged at step 4
    watch.rewind(2)  # resumed from checkpoint-2: step 3 happens again
    assert watch.observe(3, NAN) == Divergence(3, watch.diverged.loss, 2, 2.0)


class _Args(SimpleNamespace):
    per_device_train_batch_size = 4
    gradient_accumulation_steps = 1


def _callback(cancel: CancelFlag | None = None) -> tuple[EventCallback, list]:
    seen: list = []
    callback = EventCallback(EventBus([seen.append]), device="cpu", micro_batch=4, cancel=cancel or CancelFlag())
    state = TrainerState()
    state.max_steps = 10
    callback.on_train_begin(_Args(), state, TrainerControl())
    return callback, seen


def _log(callback: EventCallback, step: int, control: TrainerControl, model=None, **logs) -> None:
    state = TrainerState()
    state.global_step, state.max_steps, state.epoch = step, 10, step / 10
    callback.on_log(_Args(), state, control, logs={"learning_rate": 1e-4, **logs}, model=model)


def test_a_non_finite_loss_with_finite_weights_is_a_skipped_fp16_step_and_training_goes_on() -> None:
    """fp16's GradScaler skips a step whose forward pass overflowed: the logged loss is inf/NaN but the weights
    are untouched. Stopping there would fail a healthy run; only NaN weights, or such logs in a row, stop it."""
    import torch

    model = torch.nn.Linear(4, 4)
    callback, seen = _callback()
    _log(callback, 1, TrainerControl(), model=model, loss=2.5)
    control = TrainerControl(should_save=True)
    _log(callback, 2, control, model=model, loss=INF)
    assert not control.should_training_stop and control.should_save and callback.watch.diverged is None
    assert seen[-1].loss is None  # still shown as not finite
    _log(callback, 3, TrainerControl(), model=model, loss=2.4)  # training went on
    for step in (4, 5):
        _log(callback, step, TrainerControl(), model=model, loss=NAN)
    assert callback.watch.diverged is None
    control = TrainerControl(should_save=True)
    _log(callback, 6, control, model=model, loss=NAN)  # the third in a row: the run learns nothing
    assert control.should_training_stop and not control.should_save
    assert (callback.watch.diverged.step, callback.watch.diverged.last_finite_step) == (6, 3)

    with torch.no_grad():
        model.weight[0, 0] = float("nan")  # what a NaN loss does to the weights once the optimizer applies it
    callback, _ = _callback()
    control = TrainerControl(should_save=True)
    _log(callback, 1, control, model=model, loss=NAN)
    assert control.should_training_stop and callback.watch.diverged.step == 1
    model.weight.requires_grad_(False)  # frozen weights (a LoRA's base) are not what the optimizer changes:
    callback, _ = _callback()           # only the trainable ones (here the bias) show whether a step was applied
    _log(callback, 1, TrainerControl(), model=model, loss=NAN)
    assert callback.watch.diverged is None


def test_a_nan_grad_norm_with_a_finite_loss_trains_on() -> None:
    # fp16 loss scaling: an overflowing step has an inf/NaN gradient norm and is skipped on purpose
    callback, seen = _callback()
    for grad_norm in (INF, NAN):
        control = TrainerControl(should_save=True, should_evaluate=True)
        _log(callback, 3, control, loss=2.0, grad_norm=grad_norm)
        assert not control.should_training_stop and control.should_save and control.should_evaluate
    assert callback.watch.diverged is None and [e.loss for e in seen] == [2.0, 2.0]


def test_a_nan_loss_stops_without_saving_even_when_a_cancel_asked_to_save() -> None:
    cancel = CancelFlag()
    callback, seen = _callback(cancel)
    _log(callback, 1, TrainerControl(), loss=2.31)
    cancel.set("SIGINT")  # a cancel saves this step's checkpoint... but not NaN weights
    control = TrainerControl(should_save=True, should_evaluate=True)
    _log(callback, 2, control, loss=NAN, grad_norm=NAN)
    assert control.should_training_stop and not control.should_save and not control.should_evaluate
    assert callback.watch.diverged.step == 2

    # the step is in the stream as a valid JSON line whose loss is null, and a reader gets it back
    line = seen[-1].to_json()
    assert json.loads(line, parse_constant=pytest.fail)["loss"] is None
    back = parse_event(line)
    assert back.type == "step" and back.step == 2 and back.loss is None


def test_every_save_is_preceded_by_a_loss_check_and_the_epoch_end_saves_nothing_after_divergence() -> None:
    callback, _ = _callback()
    state = TrainerState()
    control = TrainerControl(should_save=True)
    callback.on_step_end(_Args(), state, control)
    assert control.should_log  # the Trainer logs (and we look at the loss) before it saves in this step
    _log(callback, 5, control, loss=INF)
    epoch_end = TrainerControl(should_save=True, should_evaluate=True)  # what save_strategy: epoch sets
    callback.on_epoch_end(_Args(), state, epoch_end)
    assert not epoch_end.should_save and not epoch_end.should_evaluate


def _checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_only_a_checkpoint_older_than_the_last_finite_loss_is_called_good(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        _checkpoint(tmp_path, step)
    _checkpoint(tmp_path, 5, complete=False)  # killed mid-save
    # checkpoint-6 holds the weights the NaN at step 7 was computed with: not known good
    assert good_checkpoint(tmp_path, Divergence(7, NAN, 6, 2.0)) == tmp_path / "checkpoint-4"
    assert good_checkpoint(tmp_path, Divergence(8, NAN, 7, 2.0)) == tmp_path / "checkpoint-6"
    assert good_checkpoint(tmp_path, Divergence(1, NAN)) is None
    assert good_checkpoint(tmp_path / "none", Divergence(9, NAN, 8, 2.0)) is None


def _plan(**fields) -> SimpleNamespace:
    """The Plan fields the message reads (method, device, dtype)."""
    return SimpleNamespace(**{"method": "lora", "device": "cuda", "dtype": "bf16"} | fields)


def test_the_failure_names_the_step_and_the_knobs_with_the_runs_values(tmp_path: Path) -> None:
    recipe = parse_recipe({"model_name_or_path": "m", "dataset": ["data/chat.jsonl"], "learning_rate": 2e-4,
                           "max_grad_norm": 5.0})
    _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 11)
    error = divergence_error(Divergence(12, NAN, 11, 2.3141), recipe=recipe, plan=_plan(dtype="fp16"),
                             run_name="chat", checkpoints=tmp_path)
    assert error.what.startswith("training diverged: the loss became nan at step 12 (last finite loss 2.314 "
                                 "at step 11)")
    fix = error.fix
    assert "lower learning_rate (now 0.0002; try 0.0001)" in fix
    assert "bf16 instead of fp16" in fix and "max_grad_norm now 5; try 1.0" in fix
    assert "`ftwiz data check data/chat.jsonl`" in fix and "--run-name chat-2" in fix
    assert f"`--from {tmp_path / 'checkpoint-10'}`" in fix  # not checkpoint-11: it produced the NaN
    assert "`ftwiz train --resume chat` would repeat the same settings from checkpoint-11" in fix

    plain = divergence_error(Divergence(1, INF), recipe=recipe.model_copy(update={"learning_rate": 0.5, "max_grad_norm": 1.0}),
                             plan=_plan(method="full", dtype="bf16"), run_name="x", checkpoints=tmp_path / "none")
    assert "became inf at step 1 (no finite loss was logged before it)" in plain.what
    assert "now 0.5; try 2e-05" in plain.fix  # far above full fine-tuning's usual rate: the usual one
    assert "fp16" not in plain.fix and "max_grad_norm" not in plain.fix and "--resume" not in plain.fix


def test_max_grad_norm_0_turns_clipping_off_as_in_transformers(tmp_path: Path) -> None:
    """A recipe with `max_grad_norm: 0` (transformers' Trainer: no clipping) was refused as invalid; it is
    passed on as 0, and a divergence under it advises turning clipping back on."""
    from ftwiz.core.rundir import RunDir
    from ftwiz.core.train.trainer_args import training_arguments

    recipe = parse_recipe({"model_name_or_path": "m", "dataset": ["d.jsonl"], "max_grad_norm": 0})
    assert recipe.max_grad_norm == 0
    plan = _plan(device="cpu", dtype="fp32", micro_batch=1, grad_accum=1, optimizer="adamw_torch")
    assert training_arguments(recipe, plan, RunDir(tmp_path / "r"), has_validation=False).max_grad_norm == 0
    error = divergence_error(Divergence(3, NAN, 2, 2.0), recipe=recipe, plan=_plan(), run_name="r",
                             checkpoints=tmp_path / "none")
    assert "turn gradient clipping back on (max_grad_norm: 1.0" in error.fix


def test_a_run_started_from_an_adapter_that_diverges_before_a_checkpoint_names_that_adapter(tmp_path: Path) -> None:
    """`ftwiz train R --from runs/a/checkpoints/checkpoint-8` diverged at step 2: the fix said only `ftwiz train
    RECIPE --run-name b-2`, a new run from the bare base, dropping the adapter the user started from."""
    start = tmp_path / "a" / "checkpoints" / "checkpoint-8"
    recipe = parse_recipe({"model_name_or_path": "m", "dataset": ["d.jsonl"], "adapter_name_or_path": str(start)})
    error = divergence_error(Divergence(2, NAN, 1, 4.9), recipe=recipe, plan=_plan(), run_name="b",
                             checkpoints=tmp_path / "b" / "checkpoints")
    assert "--run-name b-2" in error.fix and f"`--from {start}`" in error.fix
