"""The CLI's training bar shows the latest eval loss, also the one evaluated after the last step.

Trainer evaluates after its final step, so no step event follows that eval; the bar used to keep showing
the previous eval (e.g. the step-0 loss 8.209 next to 'eval at step 10: loss 3.1948').
"""

from __future__ import annotations

import io

from ftwiz.core.cli.train_progress import TrainProgress
from ftwiz.core.events import Eval, Started, Step
from rich.console import Console


def test_the_final_bar_shows_the_eval_made_after_the_last_step() -> None:
    out = io.StringIO()
    progress = TrainProgress(Console(file=out, width=200, force_terminal=False, color_system=None))
    progress(Started(run_dir="runs/x", method="lora", total_steps=2))
    progress(Eval(step=0, loss=8.209, perplexity=3673.0))
    for step in (1, 2):
        progress(Step(step=step, total_steps=2, epoch=step / 2, loss=3.2, lr=1e-3, rss_bytes=2**20,
                      tokens_per_s=100.0, tokens_seen=100 * step))
    progress(Eval(step=2, loss=3.1948, perplexity=24.4))
    progress.stop()
    bar = [line for line in out.getvalue().splitlines() if "2/2" in line][-1]
    assert "eval 3.195" in bar and "eval 8.209" not in bar


def test_the_next_command_exports_the_recipes_quantization(tmp_path) -> None:
    """A recipe with export_quant [Q8_0] was told `--quant Q4_K_M` after training."""
    from types import SimpleNamespace

    run = tmp_path / "nu-lora"
    run.mkdir()
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\nexport_quant: [Q8_0]\n")
    out = io.StringIO()
    progress = TrainProgress(Console(file=out, width=200, force_terminal=False, color_system=None))
    progress.final(SimpleNamespace(status="completed", run_dir=run, output_path=run / "adapter",
                                   summary={"steps": 3, "seconds": 1.0}))
    assert f"next: ftwiz export {run} --quant Q8_0 --verify" in out.getvalue()


def test_the_bar_is_done_when_training_finishes_not_after_later_stages() -> None:
    """`ftwiz demo` printed the training bar again after its export and chat lines."""
    from ftwiz.core.events import Finished

    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    progress = TrainProgress(console)
    progress(Started(run_dir="runs/x", method="lora", total_steps=1))
    progress(Step(step=1, total_steps=1, epoch=1.0, loss=3.2, lr=1e-3, rss_bytes=2**20))
    progress(Finished(status="completed"))
    console.print("[7/7] chat: a later stage")
    progress.stop()
    text = out.getvalue()
    assert "1/1" in text and text.rindex("1/1") < text.index("[7/7] chat")


def test_a_long_warning_reaches_a_log_whole(capsys) -> None:
    """`ftwiz train ... 2> train.log`: a warning naming a file and line was broken at 80 columns mid-path."""
    from ftwiz.core.events import Message

    text = "5 of 20 records are not trained (over_max_length 5): the first is " + "/data/" + "x" * 120 + ".jsonl line 7"
    TrainProgress()(Message(level="warning", text=text))
    assert f"warning: {text}" in capsys.readouterr().err.splitlines()  # whole, and said to be a warning
