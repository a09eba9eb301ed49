"""Train and eval loss curves drawn from a run's ``events.jsonl`` into a PNG (matplotlib, no display).

The curves come from the same event stream the CLI and the wizard showed live, so the picture in the
report is the training that actually happened, including resumed runs (steps logged twice after a resume
keep their last value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.atomic import atomic_path
from ftwiz.core.events import Eval, Step, read_events


@dataclass
class LossCurves:
    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.train and not self.eval


def loss_curves(events_path: Path) -> LossCurves:
    """Step -> loss for training steps and evaluations; the last value wins for a repeated step."""
    train: dict[int, float] = {}
    evals: dict[int, float] = {}
    if events_path.is_file():
        for event in read_events(events_path):
            if isinstance(event, Step) and event.loss is not None:  # None: diverged (NaN/inf), no point
                train[event.step] = event.loss
            elif isinstance(event, Eval):
                evals[event.step] = event.loss
    return LossCurves(train=sorted(train.items()), eval=sorted(evals.items()))


def plot_loss(curves: LossCurves, out_file: Path, *, title: str = "loss") -> Path:
    """Write the curves as a PNG; the Agg backend draws without a display (servers, CI, SSH)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if curves.train:
        xs, ys = zip(*curves.train, strict=True)
        ax.plot(xs, ys, label="train loss", color="tab:blue", linewidth=1.2)
    if curves.eval:
        xs, ys = zip(*curves.eval, strict=True)
        ax.plot(xs, ys, label="eval loss", color="tab:orange", marker="o", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_file, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    return out_file
