"""A tiny training whose loss becomes NaN stops there, ends as a failure naming the step, and saves no NaN weights.

An fp32 tiny model on CPU does not diverge from a high learning rate alone (the recipe caps it below 1.0;
Adam, SGD, RMSprop and Adagrad at 0.9 all stayed finite in 12 steps), so the test makes the loss NaN from
a given step by wrapping the Trainer's ``compute_loss`` (test-only, no product switch). Everything after
that is real: the NaN loss goes through backward and the optimizer, so the in-memory weights are NaN,
exactly what a diverged run would have saved as its adapter.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import transformers
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.errors import FtwizError
from ftwiz.core.events import read_events
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.runner import train
from safetensors.torch import load_file

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def tiny_recipe(model: Path, **fields):
    base = {"model_name_or_path": str(model), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
            "max_samples": 16, "cutoff_len": 64, "learning_rate": 3e-3, "max_steps": 10,
            "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "lora_rank": 4, "save_steps": 2,
            "warmup_ratio": 0.0, "lr_scheduler_type": "constant", "near_dedup_threshold": None,
            "val_size": 0.0, "test_size": 0.0}
    return parse_recipe(base | fields)


@pytest.fixture()
def nan_from_step(monkeypatch: pytest.MonkeyPatch):
    """Make ``trainer``'s training loss ``value`` from optimizer step ``n`` on (1-based, as events count
    steps); ``n`` None: the loss as it is again."""
    originals: dict[type, object] = {}

    def arm(n: int | None, value: float = float("nan"), trainer: type = transformers.Trainer) -> None:
        original = originals.setdefault(trainer, trainer.compute_loss)

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            out = original(self, model, inputs, return_outputs=return_outputs, **kwargs)
            if n is None or self.state.global_step + 1 < n:  # global_step counts the steps already taken
                return out
            loss, rest = (out[0], out[1:]) if return_outputs else (out, ())
            loss = loss * value  # stays in the graph: backward sends NaN gradients into the optimizer
            return (loss, *rest) if return_outputs else loss

        monkeypatch.setattr(trainer, "compute_loss", compute_loss)

    return arm


def _all_finite(folder: Path) -> bool:
    weights = load_file(str(folder / "adapter_model.safetensors"))
    return bool(weights) and all(bool(t.isfinite().all()) for t in weights.values())


def test_a_nan_loss_stops_the_run_as_a_failure_and_keeps_the_good_checkpoint(
        tiny_qwen2: Path, tmp_path: Path, nan_from_step, capsys: pytest.CaptureFixture[str]) -> None:
    nan_from_step(6)
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe(tiny_qwen2, run_name="nan").model_dump(mode="json")))
    events_file = tmp_path / "events.jsonl"

    assert cli_main(["train", str(recipe_file), "--events", str(events_file)]) == 2
    err = capsys.readouterr().err
    assert "training diverged: the loss became nan at step 6 (last finite loss" in err
    assert "at step 5)" in err and "completed" not in err
    assert "lower learning_rate (now 0.003; try 0.0002)" in err
    run = RunDir.named("nan")
    assert f"--from {run.checkpoints / 'checkpoint-4'}" in err  # a new run can start from the last good one

    status = json.loads(run.status.read_text())
    assert status["state"] == "failed" and "step 6" in status["message"] and "learning_rate" in status["fix"]

    # what the wizard reads (--events) and what stays in the run folder: the step, then the failure
    for path in (events_file, run.events):
        events = list(read_events(path))
        steps = {e.step: e.loss for e in events if e.type == "step"}
        assert max(steps) == 6 and steps[6] is None and all(math.isfinite(steps[s]) for s in range(1, 6))
        assert events[-1].type == "failed" and events[-1].step == 6 and "nan at step 6" in events[-1].reason
        assert not any(e.type == "finished" for e in events)

    # the NaN weights went nowhere: no adapter, no checkpoint at or after the divergence
    assert not run.adapter.exists() and not run.model.exists()
    assert run.checkpoint_steps() == [2, 4]
    state = json.loads((run.checkpoints / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and _all_finite(run.checkpoints / "checkpoint-4")

    # a resume repeats the settings; diverging right after checkpoint-4 this time, it knows the earlier losses
    nan_from_step(5)
    assert cli_main(["train", "--resume", "nan"]) == 2
    err = capsys.readouterr().err
    assert "the loss became nan at step 5 (last finite loss" in err and "at step 4)" in err
    assert f"--from {run.checkpoints / 'checkpoint-2'}" in err and run.checkpoint_steps() == [2, 4]

    # the fix's new run from the good checkpoint works (here with the loss left alone)
    nan_from_step(None)
    assert cli_main(["train", str(recipe_file), "--run-name", "nan-2", "--from",
                     str(run.checkpoints / "checkpoint-4"), "--max-steps", "2"]) == 0
    assert RunDir.named("nan-2").state() == "completed" and _all_finite(RunDir.named("nan-2").adapter)


def test_an_infinite_loss_with_epoch_checkpoints_saves_nothing_after_it(tiny_qwen2: Path, nan_from_step) -> None:
    # save_steps None: a checkpoint at each epoch's end, where the Trainer would save once more after the stop
    nan_from_step(6, float("inf"))
    recipe = tiny_recipe(tiny_qwen2, run_name="inf-epochs", save_steps=None, max_steps=-1, num_train_epochs=3)
    with pytest.raises(FtwizError, match=r"the loss became inf at step 6 \(last finite loss \S+ at step 5\)") as caught:
        train(recipe)
    run = RunDir.named("inf-epochs")
    assert run.state() == "failed" and not run.adapter.exists()
    assert run.checkpoint_steps() == [4]  # the first epoch's; none for the broken second one
    assert _all_finite(run.checkpoints / "checkpoint-4")
    # checkpoint-4 holds the weights after step 4; step 5's finite loss was computed with them
    assert "to start from checkpoint-4," in caught.value.fix


def test_a_dpo_run_whose_loss_becomes_nan_fails_the_same_way(tiny_qwen2: Path, tmp_path: Path, nan_from_step) -> None:
    import trl

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Question {i}?", "chosen": "A good answer.",
                                         "rejected": "No idea."}) + "\n" for i in range(16)))
    nan_from_step(3, trainer=trl.DPOTrainer)
    with pytest.raises(FtwizError, match=r"the loss became nan at step 3 \(last finite loss \S+ at step 2\)"):
        train(tiny_recipe(tiny_qwen2, run_name="dpo-nan", stage="dpo", dataset=[str(pairs)], max_steps=4))
    run = RunDir.named("dpo-nan")
    assert run.state() == "failed" and not run.adapter.exists() and run.checkpoint_steps() == [2]
    assert [e.loss for e in read_events(run.events) if e.type == "step"][-1] is None
