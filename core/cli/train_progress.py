"""Live training progress for the terminal (rich), fed by the event stream like every other view.

Rendering happens on rich's refresh thread at 4 Hz, never per step, so a fast tiny model is not slowed
down by its own progress bar.
"""

from __future__ import annotations

import sys

from ftwiz.core.cli.console import human_bytes, styled, warning_parts
from ftwiz.core.rate import RateWindow
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TrainProgress:
    """An event subscriber: a progress bar with loss, eval loss, tokens/s and memory; a final summary."""

    def __init__(self, console: Console | None = None) -> None:
        # to a pipe or a log, a warning naming a file and line is written whole, not broken at 80 columns
        self.console = console or Console(stderr=True, soft_wrap=not styled(sys.stderr))
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), console=self.console, refresh_per_second=4, transient=False)
        self.task = None
        self.eval_loss: float | None = None
        self.last_step = None  # the latest step event: an eval after it redraws the bar's stats
        # tokens/s and ETA from one smoothed window (not rich's own estimate): they agree and do not jump
        self.rate = RateWindow()

    def __call__(self, event) -> None:
        kind = event.type
        if kind == "started":
            self.rate.reset()
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("training", total=event.total_steps, stats="",
                                                   completed=event.resumed_from_step)
            self.console.print(f"{'resuming from step ' + str(event.resumed_from_step) if event.resumed_from_step else 'training'}"
                               f" ({event.method} on {event.device}, micro-batch {event.micro_batch} x "
                               f"accumulation {event.grad_accum}) -> {event.run_dir}")
        elif kind == "step" and self.task is not None:
            self.rate.add(event)
            self.last_step = event
            self._show(event)
        elif kind == "eval":
            self.eval_loss = event.loss
            if self.task is not None and self.last_step is not None:
                self._show(self.last_step)  # the bar's eval is this one (the last eval comes after the last step)
            if event.rewards_margins is not None:  # a preference loss has no perplexity worth showing
                accuracy = f", accuracy {event.rewards_accuracy:.0%}" if event.rewards_accuracy is not None else ""
                self.console.print(f"eval at step {event.step}: loss {event.loss:.4f}, reward margin "
                                   f"{event.rewards_margins:+.4f}{accuracy}")
            else:
                self.console.print(f"eval at step {event.step}: loss {event.loss:.4f}, perplexity {event.perplexity:.2f}")
        else:
            self._other(event)

    def _show(self, event) -> None:
        """The bar's stats line for step ``event``, with the latest eval loss."""
        memory = event.mem_peak_bytes or event.rss_bytes
        stats = [f"loss {event.loss:.3f}" if event.loss is not None else "loss not finite"]  # (diverged)
        if self.eval_loss is not None:
            stats.append(f"eval {self.eval_loss:.3f}")
        if event.rewards_margins is not None:  # preference stages: is the chosen answer winning?
            stats.append(f"margin {event.rewards_margins:+.3f}")
            if event.rewards_accuracy is not None:
                stats.append(f"acc {event.rewards_accuracy:.0%}")
        if self.rate.tokens_per_s:
            stats.append(f"{self.rate.tokens_per_s:,.0f} tok/s")
        stats.append(f"mem {human_bytes(memory)}")
        eta = self.rate.eta_s(event.step, event.total_steps)
        stats.append(f"ETA {_clock(eta)}" if eta is not None else "ETA measuring...")
        self.progress.update(self.task, completed=event.step, total=event.total_steps, stats="  ".join(stats))

    def _other(self, event) -> None:
        kind = event.type
        if kind == "checkpoint":
            self.console.print(f"checkpoint saved: {event.path}", style="dim", markup=False)
        elif kind == "backoff":
            self.console.print(f"[yellow]out of memory: micro-batch {event.old_micro_batch} -> "
                               f"{event.new_micro_batch}, accumulation -> {event.new_grad_accum}; resuming from step "
                               f"{event.step}[/yellow]")
        elif kind == "message":
            if event.level == "warning":  # 'warning: ...' as every verb says one, also in a log; text not markup
                from rich.text import Text

                self.console.print(Text.assemble(*warning_parts(event.text)))
            else:
                self.console.print(event.text)
        elif kind == "failed":
            self.stop()  # the error itself is printed once, with its fix, by the CLI's error handler
        elif kind == "finished":
            self.stop()  # `ftwiz demo` goes on to export and chat: the bar must not print again after them

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()

    def final(self, result) -> None:
        summary = result.summary
        if result.status == "cancelled":
            self.console.print(f"[yellow]{summary.get('message', 'cancelled')}[/yellow]")
            return
        from rich.markup import escape

        # paths escaped: a run folder under 'runs [v2]' is named as it is, in a command that can be copied
        table = Table(title=f"Training completed: {escape(str(result.run_dir))}", title_justify="left",
                      show_header=False)
        table.add_column("what")
        table.add_column("value")

        def loss_pair(first, last):
            return "-" if first is None else f"{first:.4f} -> {last:.4f}"

        table.add_row("steps", str(summary.get("steps")))
        table.add_row("train loss", loss_pair(summary.get("train_loss_first"), summary.get("train_loss_last")))
        table.add_row("eval loss", loss_pair(summary.get("eval_loss_first"), summary.get("eval_loss_last")))
        if summary.get("tokens_per_s"):
            table.add_row("throughput", f"{summary['tokens_per_s']:,.0f} tokens/s")
        table.add_row("peak memory", human_bytes(summary.get("peak_memory_bytes")))
        table.add_row("time", f"{summary.get('seconds', 0):.0f} s")
        table.add_row("output", escape(str(result.output_path)))
        self.console.print(table)
        import shlex  # quoted: a runs folder with spaces gives a command that can be pasted

        self.console.print(f"next: ftwiz export {escape(shlex.quote(str(result.run_dir)))} --quant "
                           f"{_export_quant(result.run_dir)} --verify", highlight=False)


def _export_quant(run_dir) -> str:
    """The first of the run's recipe ``export_quant`` (what `ftwiz export` and the wizard default to)."""
    from pathlib import Path

    from ftwiz.core.errors import FtwizError
    from ftwiz.core.recipe import load_recipe

    try:
        quants = load_recipe(Path(run_dir) / "recipe.yaml").export_quant
    except (FtwizError, OSError):
        quants = []
    return str(quants[0]) if quants else "Q4_K_M"
