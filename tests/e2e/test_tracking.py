"""`report_to`: TensorBoard and MLflow runs written offline into the run folder, read back from the files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from ftwiz.core.errors import FtwizError
from ftwiz.core.events import read_events
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.train.runner import train

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def tracked_recipe(model: Path, report_to: list[str], run_name: str):
    return parse_recipe({
        "model_name_or_path": str(model), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
        "max_samples": 24, "cutoff_len": 128, "learning_rate": 2e-2, "max_steps": 3, "lora_rank": 4,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "warmup_ratio": 0.0,
        "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.0, "save_steps": 100,
        "report_to": report_to, "run_name": run_name})


def test_tensorboard_and_mlflow_runs_are_written_into_the_run_folder(tiny_qwen2: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tracking extra is not installed (pip install 'ftwiz[tracking]')")
    pytest.importorskip("mlflow", reason="the tracking extra is not installed (pip install 'ftwiz[tracking]')")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(tracked_recipe(tiny_qwen2, ["tensorboard", "mlflow"], "tracked"))
    assert result.status == "completed"
    ours = {e.step: e.loss for e in read_events(result.run_dir / "events.jsonl") if e.type == "step"}

    board = EventAccumulator(str(result.run_dir / "tensorboard")).Reload()
    losses = {s.step: s.value for s in board.Scalars("train/loss")}
    assert losses.keys() == ours.keys()
    assert all(losses[k] == pytest.approx(ours[k], rel=1e-5) for k in ours)
    assert "recipe/text_summary" in board.Tags()["tensors"]

    client = MlflowClient((result.run_dir / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("ftwiz")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tracked"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert {m.step: m.value for m in history} == pytest.approx(ours, rel=1e-5)
    assert "train_loss" in run.data.metrics  # the final summary metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"recipe.yaml", "plan.json"} <= artifacts
    recipe_text = Path(client.download_artifacts(run.info.run_id, "recipe.yaml")).read_text()
    assert yaml.safe_load(recipe_text)["run_name"] == "tracked"


def test_a_tracker_that_is_not_installed_is_refused_before_any_work(tiny_qwen2: Path) -> None:
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(FtwizError, match="wandb, which is not installed") as caught:
        train(tracked_recipe(tiny_qwen2, ["wandb"], "untracked"))
    assert caught.value.where == "recipe: report_to"
