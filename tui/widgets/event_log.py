"""The scrolling log of a child job: events rendered in words, raw stderr lines dimmed."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import RichLog


def describe_event(event: Any) -> Text | None:
    """One readable line per event; ``None`` for events the log leaves to other widgets (steps)."""
    kind = getattr(event, "type", "")
    if kind == "started":
        resumed = f", resumed from step {event.resumed_from_step}" if event.resumed_from_step else ""
        return Text(f"started {event.method} on {event.device}: {event.total_steps} steps, micro-batch "
                    f"{event.micro_batch} x {event.grad_accum}{resumed}", style="bold")
    if kind == "eval" and getattr(event, "rewards_margins", None) is not None:
        # a preference loss (dpo/orpo/kto) is no token cross-entropy: exp(loss) would be no perplexity
        accuracy = f", accuracy {event.rewards_accuracy:.0%}" if event.rewards_accuracy is not None else ""
        return Text(f"eval at step {event.step}: loss {event.loss:.4f}, reward margin {event.rewards_margins:+.4f}"
                    f"{accuracy}", style="cyan")
    if kind == "eval":
        return Text(f"eval at step {event.step}: loss {event.loss:.4f}, perplexity {event.perplexity:.2f}",
                    style="cyan")
    if kind == "checkpoint":
        return Text(f"checkpoint saved at step {event.step}: {event.path}", style="green")
    if kind == "backoff":
        return Text(f"out of memory at step {event.step}: micro-batch {event.old_micro_batch} -> "
                    f"{event.new_micro_batch} (x{event.new_grad_accum} accumulation). {event.reason}",
                    style="yellow")
    if kind == "message":
        return Text(event.text, style="yellow" if event.level == "warning" else "")
    if kind == "progress":
        share = f" {event.done / event.total:.0%}" if event.total else ""
        return Text(f"{event.stage}{share} {event.message}".rstrip())
    if kind == "finished":
        where = f": {event.output_path}" if event.output_path else ""
        style = "bold green" if event.status == "completed" else "bold yellow"
        return Text(f"{event.status}{where}", style=style)
    if kind == "failed":
        text = Text(f"failed: {event.reason}", style="bold red")
        if event.fix:
            text.append(f"\n  fix: {event.fix}", style="green")
        return text
    return None


class EventLog(RichLog):
    """A RichLog that knows how to write ftwiz events; keeps the last ``max_lines`` lines."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, max_lines=2000, wrap=True, markup=False, highlight=False)

    def write_event(self, event: Any) -> None:
        line = describe_event(event)
        if line is not None:
            self.write(Text(time.strftime("%H:%M:%S ", time.localtime(event.time)), style="dim") + line)

    def write_raw(self, line: str) -> None:
        self.write(Text(line, style="dim"))
