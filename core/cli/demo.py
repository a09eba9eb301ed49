"""``ftwiz demo``: the whole pipeline on the embedded tiny model, offline, on CPU, in a few minutes."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-name", help="run directory name (default: demo-<date>-<time>)")
    parser.add_argument("--max-steps", type=int, help="train for fewer steps (a quicker, weaker demo)")
    parser.add_argument("--no-serve", action="store_true", help="skip starting the llama.cpp server")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli import EXIT_OK
    from ftwiz.core.cli.console import console
    from ftwiz.core.cli.train_progress import TrainProgress
    from ftwiz.core.demo import run_demo
    from ftwiz.core.events import EventBus
    from rich.table import Table

    progress = TrainProgress()
    bus = EventBus([lambda e: progress(e) if e.type != "progress" else None])
    try:
        result = run_demo(events=bus, say=lambda text: console.print(text, highlight=False),
                          run_name=args.run_name, max_steps=args.max_steps, serve=not args.no_serve)
    finally:
        progress.stop()
    table = Table(title="ftwiz demo: where everything is", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("where / result")
    table.add_row("run directory", str(result.run_dir))
    table.add_row("adapter", str(result.run_dir / "adapter"))
    table.add_row("merged 16-bit model", str(result.run_dir / "merged"))
    table.add_row("GGUF (Q8_0)", f"{result.gguf} (verified: {'yes' if result.verify_passed else 'NO'})")
    table.add_row("style score (ROUGE-L)", f"base {result.effect['base_rouge_l']:.2f} -> fine-tuned "
                                           f"{result.effect['tuned_rouge_l']:.2f}")
    if result.server_reply:
        table.add_row("llama.cpp server reply", result.server_reply)
    table.add_row("time by stage", ", ".join(f"{k} {v:.0f}s" for k, v in result.timings.items()))
    console.print(table)
    console.print(f"next: ftwiz chat {result.gguf}    |    ftwiz register {result.gguf} --name ftwiz-demo")
    return EXIT_OK
