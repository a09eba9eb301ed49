"""``ftwiz demo``: the whole pipeline on the embedded tiny model, offline, on CPU, in a few minutes."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  ftwiz demo                                         the whole pipeline, offline, a few minutes on a CPU
  ftwiz demo --max-steps 10 --no-serve               quicker
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-name", help="run directory name (default: demo-<date>-<time>)")
    parser.add_argument("--max-steps", type=int, help="train for fewer steps (a quicker, weaker demo)")
    parser.add_argument("--no-serve", action="store_true", help="skip starting the llama.cpp server")


class BuildBar:
    """A progress bar with the time left for the demo model's one-time build (``base model`` events)."""

    def __init__(self) -> None:
        from ftwiz.core.cli.console import err_console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err_console, transient=False)
        self.task = None
        self.finished = False

    def __call__(self, event) -> None:
        if event.stage != "base model" or self.finished:
            return
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("building the demo model", total=event.total)
        self.bar.update(self.task, completed=event.done, total=event.total)
        if event.done >= event.total:
            self.finished = True
            self.stop()

    def stop(self) -> None:
        if self.task is not None:
            self.bar.stop()
            self.task = None


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli import EXIT_OK
    from ftwiz.core.cli.console import console
    from ftwiz.core.cli.train_progress import TrainProgress
    from ftwiz.core.demo import run_demo
    from ftwiz.core.events import EventBus
    from rich.table import Table

    if args.max_steps is not None:
        from ftwiz.core.errors import FtwizError
        from ftwiz.core.recipe_values import max_steps_problem  # the recipe's rule, as train --max-steps

        problem = max_steps_problem(args.max_steps)
        if problem:  # 0 was ignored (the full demo ran), -5 trained for the epochs
            raise FtwizError(f"--max-steps {problem}", where="--max-steps", fix="e.g. --max-steps 10")
    progress = TrainProgress()
    build = BuildBar()
    bus = EventBus([lambda e: progress(e) if e.type != "progress" else build(e)])
    try:
        result = run_demo(events=bus, say=lambda text: console.print(text, highlight=False),
                          run_name=args.run_name, max_steps=args.max_steps, serve=not args.no_serve)
    finally:
        build.stop()
        progress.stop()
    table = Table(title="ftwiz demo: where everything is", title_justify="left", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("where / result", overflow="fold")  # paths are copied from here: fold, never cut
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
    import shlex  # quoted: a folder with spaces or brackets gives commands that can be pasted

    gguf = shlex.quote(str(result.gguf))
    console.print(f"next: ftwiz chat {gguf}    |    ftwiz register {gguf} --name ftwiz-demo", markup=False)
    return EXIT_OK
