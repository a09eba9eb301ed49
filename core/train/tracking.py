"""Experiment tracking (recipe ``report_to``): TensorBoard and MLflow offline into the run folder, W&B as set up.

The event stream stays the source of ftwiz's own views; trackers receive the Trainer's logs through
transformers' integration callbacks, pointed at the run directory:
- ``tensorboard``: ``TensorBoardCallback`` writing ``runs/<name>/tensorboard/`` (``tensorboard --logdir``),
  plus the recipe and plan as text;
- ``mlflow``: ``MLflowCallback`` with a file store at ``runs/<name>/mlruns/`` (``mlflow ui
  --backend-store-uri runs/<name>/mlruns``), experiment ``ftwiz``, run named after the run, the recipe
  and plan as artifacts;
- ``wandb``: transformers' ``WandbCallback`` (``report_to=["wandb"]``), only when wandb is installed and
  logged in (or ``WANDB_MODE=offline``).
Each is optional: asking for one that is not installed is an FtwizError naming ``report_to``.
"""

from __future__ import annotations

import importlib.util
import json
import netrc
import os
from contextlib import contextmanager
from pathlib import Path

from ftwiz.core.errors import FtwizError

INSTALL = "pip install 'ftwiz[tracking]'"
MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def requested(report_to: list[str]) -> list[str]:
    return [name for name in report_to if name != "none"]


def _wandb_configured() -> bool:
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_trackers(report_to: list[str]) -> None:
    """Refuse, before any work, trackers that are not installed (or W&B without a login)."""
    missing = [name for name in requested(report_to) if importlib.util.find_spec(MODULES[name]) is None]
    if missing:
        raise FtwizError(f"report_to asks for {', '.join(missing)}, which is not installed",
                         where="recipe: report_to",
                         fix=f"{INSTALL} (tensorboard and mlflow)" + (", pip install wandb" if "wandb" in missing
                                                                      else "") + ", or remove it from report_to")
    if "wandb" in report_to and not _wandb_configured():
        raise FtwizError("report_to asks for wandb, but Weights & Biases is not logged in",
                         where="recipe: report_to",
                         fix="run `wandb login` (or set WANDB_MODE=offline), or remove wandb from report_to")


def trainer_report_to(report_to: list[str]) -> list[str]:
    """What TrainingArguments.report_to gets: only wandb; TensorBoard and MLflow come as our callbacks."""
    return ["wandb"] if "wandb" in report_to else []


@contextmanager
def _environment(values: dict[str, str]):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def tensorboard_dir(run_root: Path) -> Path:
    return Path(run_root) / "tensorboard"


def mlflow_uri(run_root: Path) -> str:
    return (Path(run_root) / "mlruns").resolve().as_uri()


def tracking_callbacks(report_to: list[str], run_root: Path, recipe_yaml: str, plan_json: str) -> list:
    """Trainer callbacks for TensorBoard and MLflow, writing into ``run_root``."""
    callbacks = []
    if "tensorboard" in report_to:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        writer = SummaryWriter(log_dir=str(tensorboard_dir(run_root)))
        writer.add_text("recipe", f"```yaml\n{recipe_yaml}\n```")
        writer.add_text("plan", f"```json\n{plan_json}\n```")
        callbacks.append(TensorBoardCallback(tb_writer=writer))
    if "mlflow" in report_to:
        callbacks.append(_run_dir_mlflow(mlflow_uri(run_root), recipe_yaml, plan_json))
    return callbacks


def _run_dir_mlflow(uri: str, recipe_yaml: str, plan_json: str):
    from transformers.integrations import MLflowCallback

    class RunDirMLflow(MLflowCallback):
        """transformers' MLflowCallback (configured by environment) pointed at the run's file store."""

        def setup(self, args, state, model):
            # MLflow 3 refuses a file store unless allowed; it is what works offline with mlflow-skinny.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            import mlflow

            # MLflow 3's default registry is a sqlite file in the working directory: point both stores here
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            with _environment({"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "ftwiz"}):
                super().setup(args, state, model)
            if state.is_world_process_zero and self._ml_flow.active_run() is not None:
                self._ml_flow.log_text(recipe_yaml, "recipe.yaml")
                self._ml_flow.log_dict(json.loads(plan_json), "plan.json")

    return RunDirMLflow()
