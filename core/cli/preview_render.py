"""``ftwiz data preview`` on the terminal: a sample's learned characters bold green, context dimmed.

Core (:mod:`ftwiz.core.data.preview`, :mod:`ftwiz.core.data.pair_view`) returns the segments and counts;
this module only prints them.
"""

from __future__ import annotations

from rich.text import Text

LEARNED, CONTEXT = "bold green", "dim"


def learned_text(segments: list[tuple[str, bool]]) -> Text:
    """Segments ``(text, learned)`` as one Text, learned pieces bold green and context dimmed."""
    text = Text()
    for piece, learned in segments:
        text.append(piece, style=LEARNED if learned else CONTEXT)
    return text


def render_preview(console, tokenizer, view) -> None:
    """One SampleView: its source, its text marked, and how many tokens are learned."""
    from ftwiz.core.data.preview import learned_segments, tokenizer_label
    from rich.markup import escape

    console.print(f"[bold]Sample[/bold] from {escape(str(view.record))} (learned tokens in [bold green]green[/bold green], "
                  "context dimmed):", highlight=False)
    console.print(learned_text(learned_segments(tokenizer, view)))
    console.print(f"{view.learned} of {len(view.labels)} tokens are learned (tokenizer {tokenizer_label(tokenizer)})",
                  highlight=False)


def render_pair(console, tokenizer, view, stage: str | None = None) -> None:
    """Chosen above rejected, the answer tokens each is scored on in bold, and what training does with them."""
    from ftwiz.core.data.preview import learned_segments, tokenizer_label
    from rich.markup import escape

    console.print(f"[bold]Preference pair[/bold] from {escape(str(view.record))} (scored answer tokens in bold green, prompt "
                  "dimmed):", highlight=False)
    goal = {"kto": ("learned as desirable", "learned as undesirable")}.get(
        stage or "", ("made more likely", "made less likely, relative to the reference model"))
    for name, sample, aim in (("chosen", view.chosen, goal[0]), ("rejected", view.rejected, goal[1])):
        console.print(f"[bold]{name}[/bold] ({sample.learned} of {len(sample.labels)} tokens {aim}):",
                      highlight=False)
        console.print(learned_text(learned_segments(tokenizer, sample)))
    console.print(f"tokenizer {tokenizer_label(tokenizer)}", highlight=False)


def render_stats(console, prepared, cutoff_len: int, batch_size: int) -> None:
    """Length percentiles, histogram, over-length count, steps per epoch and the data checks' counts."""
    from ftwiz.core.data.preview import stats_lines

    for line in stats_lines(prepared, cutoff_len, batch_size):
        console.print(line, highlight=False)
