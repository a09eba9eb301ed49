"""What the user sees before training: a sample with learned tokens highlighted, and length statistics."""

from __future__ import annotations

import math

from rich.text import Text


def masked_sample(tokenizer, prepared, index: int = 0) -> tuple[Text, int, int]:
    """One training sample as the model sees it: learned tokens bold green, context dimmed."""
    row = prepared.train[min(index, len(prepared.train) - 1)]
    text = Text()
    for token_id, label in zip(row["input_ids"], row["labels"], strict=True):
        piece = tokenizer.decode([token_id], skip_special_tokens=False)
        text.append(piece, style="bold green" if label != -100 else "dim")
    learned = sum(1 for lab in row["labels"] if lab != -100)
    return text, learned, len(row["labels"])


def render_preview(console, tokenizer, prepared, index: int = 0) -> None:
    text, learned, total = masked_sample(tokenizer, prepared, index)
    console.print("[bold]Sample[/bold] (learned tokens in [bold green]green[/bold green], context dimmed):")
    console.print(text)
    console.print(f"{learned} of {total} tokens are learned")


def histogram(lengths: list[int], bins: int = 10, width: int = 40) -> list[str]:
    if not lengths:
        return []
    low, top = min(lengths), max(lengths)
    step = max(1, math.ceil((top - low + 1) / bins))
    counts = [0] * bins
    for n in lengths:
        counts[min((n - low) // step, bins - 1)] += 1
    peak = max(counts) or 1
    return [f"{low + i * step:>6}-{low + (i + 1) * step - 1:<6} {'#' * round(width * c / peak):<{width}} {c}"
            for i, c in enumerate(counts) if low + i * step <= top]


def length_lines(prepared, cutoff_len: int, batch_size: int, width: int = 40) -> list[str]:
    """Percentiles, a histogram, the over-length count and steps per epoch, as plain lines."""
    train = prepared.stats.get("train", {})
    lines = [f"Token lengths (train, {train.get('samples', len(prepared.train))} samples): "
             f"p50 {train.get('length_p50')}, p90 {train.get('length_p90')}, p99 {train.get('length_p99')}, "
             f"max {train.get('length_max')}"]
    lines += histogram(train.get("lengths", []), width=width)
    lines.append(f"over cutoff_len {cutoff_len}: {train.get('over_cutoff', 0)} "
                 f"(dropped {train.get('dropped', 0)}, truncated {train.get('truncated', 0)})")
    steps = math.ceil(len(prepared.train) / max(1, batch_size))
    lines.append(f"estimated optimizer steps per epoch at an effective batch of {batch_size}: {steps}")
    return lines


def render_stats(console, prepared, cutoff_len: int, batch_size: int) -> None:
    stats = prepared.stats
    for line in length_lines(prepared, cutoff_len, batch_size):
        console.print(line, highlight=False)
    console.print(f"read {stats.get('read')}, rejected {sum(stats.get('rejected', {}).values())} "
                  f"{stats.get('rejected', {})}, exact duplicates {stats.get('exact_duplicates', 0)}, "
                  f"near duplicates {stats.get('near_duplicates', 0)}, "
                  f"leaked prompts moved to train {stats.get('leakage_moved', 0)}")
