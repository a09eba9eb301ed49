"""Report rendering, the loss plot drawn from events.jsonl, and the review walk-through's DPO output."""

from __future__ import annotations

import json
from pathlib import Path

from ftwiz.core.evaluate.plot import loss_curves, plot_loss
from ftwiz.core.evaluate.report import (
    EvalReport,
    Forgetting,
    GenerationSettings,
    ModelResult,
    SampleResult,
    render_markdown,
    write_report,
)
from ftwiz.core.evaluate.review import review
from ftwiz.core.events import Eval, JsonlSink, Message, Step
from rich.console import Console


def _report(samples: list[SampleResult]) -> EvalReport:
    return EvalReport(
        target="runs/demo", split="test", data_file="runs/demo/data/test.jsonl", n_samples=len(samples),
        generation=GenerationSettings(max_new_tokens=64, stop_tokens=["<|im_end|>"], chat_template_hash="abc123",
                                      system_prompt="You are a pirate."),
        models=[ModelResult(label="base", engine="hf", path="/m/base", metrics={"rouge_l": 0.25, "bleu": 3.5},
                            loss=2.0, perplexity=7.389),
                ModelResult(label="tuned", engine="hf+adapter", path="/m/adapter",
                            metrics={"rouge_l": 0.75, "bleu": 41.0}, loss=0.5, perplexity=1.649)],
        samples=samples,
        forgetting=Forgetting(source="corpus", characters=100, tokens=30, base_perplexity=10.0,
                              tuned_perplexity=12.0, ratio=1.2))


def _sample(i: int, base: str, tuned: str, *, system: bool = True) -> SampleResult:
    prompt = ([{"role": "system", "content": "You are a pirate."}] if system else []) + [
        {"role": "user", "content": f"question {i}"}]
    return SampleResult(index=i, prompt=prompt, reference=f"reference {i}", outputs={"base": base, "tuned": tuned})


def test_loss_curves_come_from_step_and_eval_events_and_plot_as_png(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    sink = JsonlSink(events)
    for step, loss in [(1, 3.0), (2, 2.5), (3, 2.0), (2, 2.4)]:  # step 2 logged again after a resume
        sink(Step(step=step, total_steps=3, epoch=step / 3, loss=loss, lr=1e-3))
    sink(Message(text="not a loss"))
    sink(Eval(step=3, loss=2.2, perplexity=9.0))
    sink.close()
    curves = loss_curves(events)
    assert curves.train == [(1, 3.0), (2, 2.4), (3, 2.0)]
    assert curves.eval == [(3, 2.2)]
    png = plot_loss(curves, tmp_path / "eval" / "loss.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not list((tmp_path / "eval").glob("*.partial"))
    assert loss_curves(tmp_path / "missing.jsonl").empty


def test_markdown_puts_models_side_by_side_with_settings(tmp_path: Path) -> None:
    report = _report([_sample(0, "arr", "Ahoy | matey"), _sample(1, "x", "y")])
    md = render_markdown(report)
    assert "| metric | base | tuned |" in md
    assert "| ROUGE-L | 0.250 | 0.750 |" in md
    assert "| perplexity | 7.39 | 1.65 |" in md
    assert "ratio **1.20**" in md
    assert "greedy" in md and "`<|im_end|>`" in md and "at most 64 new tokens" in md
    assert "Ahoy \\| matey" in md  # a pipe in an answer must not break the table
    paths = write_report(report, tmp_path / "eval")
    saved = EvalReport.model_validate_json(paths["report_json"].read_text())
    assert saved.model("tuned").metrics["bleu"] == 41.0
    assert saved.generation.stop_tokens == ["<|im_end|>"]


def test_review_votes_become_dpo_pairs_in_the_order_the_user_saw(tmp_path: Path) -> None:
    samples = [_sample(0, "base zero", "tuned zero"), _sample(1, "same", "same"),
               _sample(2, "base two", "tuned two"), _sample(3, "base three", "tuned three", system=False),
               _sample(4, "base four", "tuned four")]
    report = _report(samples)
    shown: list[str] = []
    console = Console(file=open(tmp_path / "screen.txt", "w"), width=200)  # noqa: SIM115
    answers = iter(["x", "a", "b", "r", "q"])  # an invalid key first: it is asked again

    def ask(prompt: str) -> str:
        shown.append(prompt)
        return next(answers)

    result = review(report, tmp_path, ask=ask, say=lambda text: console.print(text, highlight=False, markup=False))
    console.file.close()
    screen = (tmp_path / "screen.txt").read_text()
    assert "4 samples where base and tuned answers differ (1 identical ones skipped)" in screen
    # What A and B were for each sample is recorded; the chosen answer must be the side the user typed.
    votes = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert [v["index"] for v in votes] == [0, 2, 3]
    first_a = votes[0]["shown_as_a"]
    second_b = "base" if votes[1]["shown_as_a"] == "tuned" else "tuned"
    assert votes[0]["winner"] == first_a and votes[1]["winner"] == second_b and votes[2]["winner"] == "reference"
    pairs = [json.loads(line) for line in (tmp_path / "preferences.jsonl").read_text().splitlines()]
    assert pairs[0] == {"prompt": "question 0", "chosen": f"{first_a} zero",
                        "rejected": ("base" if first_a == "tuned" else "tuned") + " zero"}
    assert pairs[1]["chosen"] == f"{second_b} two"
    assert pairs[2] == {"prompt": "question 3", "chosen": "reference 3", "rejected": "tuned three"}
    assert len(shown) == 5 and result.count("reference") == 1


def test_review_output_is_read_by_the_data_pipeline_as_dpo(tmp_path: Path) -> None:
    from ftwiz.core.data import check_dataset

    report = _report([_sample(i, f"base {i}", f"tuned {i}") for i in range(3)])
    console = Console(file=open(tmp_path / "screen.txt", "w"))  # noqa: SIM115
    answers = iter(["a", "b", "a"])
    result = review(report, tmp_path, ask=lambda _: next(answers), say=lambda text: console.print(text, highlight=False, markup=False))
    console.file.close()
    check = check_dataset(str(result.pairs_path))
    assert check.kept == 3 and "dpo" in json.dumps(check.formats)
