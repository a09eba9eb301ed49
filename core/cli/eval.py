"""``ftwiz eval RUN|MODEL``: held-out metrics, base vs tuned side by side, and optional human review.

Examples::

    ftwiz eval my-run                                  # test split, base vs tuned, report in runs/my-run/eval/
    ftwiz eval my-run --gguf runs/my-run/export/my-run-F16.gguf   # also check the exported file
    ftwiz eval my-run --review                         # vote on answers; votes saved as a DPO dataset
    ftwiz eval ./some-model --data heldout.jsonl       # a model outside a run
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN|MODEL", help="run name or directory, HF model/adapter folder, or .gguf")
    parser.add_argument("--base", help="model to compare with (default: the run's base model)")
    parser.add_argument("--split", default="test", choices=["test", "validation", "train"])
    parser.add_argument("--data", type=Path, help="evaluate on this JSONL instead of the run's split")
    parser.add_argument("--max-samples", type=int, help="use at most N samples of the split")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit (default 128)")
    parser.add_argument("--gguf", type=Path, help="also answer with this GGUF and compare it with the HF model")
    parser.add_argument("--forgetting", type=Path, metavar="FILE",
                        help="general text for the forgetting check, first 4000 characters (default: a built-in sample)")
    parser.add_argument("--no-forgetting", action="store_true", help="skip the forgetting check")
    parser.add_argument("--out", type=Path, help="report folder (default: RUN/eval/)")
    parser.add_argument("--review", action="store_true", help="vote on base vs tuned answers; saves a DPO dataset")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _print_summary(report, console) -> None:
    from ftwiz.core.evaluate.report import METRIC_ROWS, metric_title, metric_value
    from rich.table import Table

    kind = "samples" if report.samples or report.n_samples == 0 else "documents (raw text)"
    from rich.markup import escape  # a run or file named 'm [v2]' is printed as it is, not read as a style

    console.print(f"[bold]{escape(str(report.target))}[/bold]: {report.n_samples} {kind} from split "
                  f"'{escape(str(report.split))}'", highlight=False)
    table = Table()
    table.add_column("metric")
    for model in report.models:
        table.add_column(model.label, justify="right")
    for key, title in METRIC_ROWS:
        values = [metric_value(m, key) for m in report.models]
        if all(v is None for v in values):
            continue
        table.add_row(metric_title(report, key, title), *("-" if v is None else f"{v:.3f}" for v in values))
    console.print(table)
    if report.preference is not None:
        from ftwiz.core.evaluate.report import preference_lines

        for line in preference_lines(report.preference):
            console.print(line.replace("**", ""), highlight=False)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]", highlight=False)
    if report.forgetting:
        f = report.forgetting
        console.print(f"forgetting: general-text perplexity {f.base_perplexity:.2f} -> {f.tuned_perplexity:.2f} "
                      f"(ratio {f.ratio:.2f})")
    if report.gguf_agreement is not None:
        console.print(f"GGUF vs HF: {report.gguf_agreement:.0%} of greedy answers identical")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for name, path in report.files.items():
        console.print(f"{name}: {path}", highlight=False, markup=False)


def _refuse_unfinished(target: str) -> None:
    """A cancelled or failed run: say how to resume it or why it failed, before loading anything."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.rundir import RunDir

    if Path(target).is_file():
        return
    try:
        run = RunDir.resolve(target)
    except FtwizError:
        return  # a model folder or id: evaluate() resolves and reports it
    run.require_trained("evaluate")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import console, err_console, print_json
    from ftwiz.core.evaluate.runner import evaluate
    from ftwiz.core.events import EventBus, Message, Progress

    bus = EventBus()

    def show(event) -> None:
        if isinstance(event, Progress) and (event.done == event.total or int(event.done) % 10 == 0):
            err_console.print(f"[dim]{event.message} ({int(event.done)}/{int(event.total)})[/dim]")
        elif isinstance(event, Message):
            err_console.print(f"[dim]{event.text}[/dim]")

    bus.subscribe(show)
    _refuse_unfinished(args.target)
    report = evaluate(args.target, base=args.base, split=args.split, max_samples=args.max_samples,
                      max_new_tokens=args.max_new_tokens, forgetting_text=args.forgetting, events=bus,
                      gguf=args.gguf, data=args.data, out_dir=args.out, forgetting=not args.no_forgetting)
    if args.json:
        print_json(report.model_dump(mode="json"))
    else:
        _print_summary(report, console)
    if args.review:
        from ftwiz.core.evaluate.review import review

        out_dir = Path(report.files["report_json"]).parent
        review(report, out_dir, ask=lambda prompt: console.input(prompt, markup=False),
               say=lambda text: console.print(text, highlight=False, markup=False))
    return 0
