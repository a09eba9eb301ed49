"""What the user sees before training: a sample with its learned characters marked, and length statistics.

Data only (the CLI and the wizard render it, each in its own way): a sample is its rendered text cut into
segments, each learned or context, by character: decoding token by token would split the bytes
of one character between tokens (Chinese, emoji: shown as U+FFFD), so styles come from each token's
character offsets (fast tokenizers) or from groups of tokens that decode cleanly (others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.data.blocks import documents_line

# (text, learned): consecutive pieces of a rendered sample; joined they give the text back whole
Segment = tuple[str, bool]


@dataclass
class SampleView:
    """One record as training renders and masks it. ``labels`` are -100 where nothing is learned."""

    text: str
    input_ids: list[int]
    labels: list[int]
    record: str  # "FILE, line N" (or "record N") of the record shown

    @property
    def learned(self) -> int:
        return sum(1 for lab in self.labels if lab != -100)

    def to_json(self, tokenizer) -> dict[str, Any]:
        """What ``data preview --json`` prints: the text, its tokens as strings, and their labels."""
        return {"record": self.record, "tokenizer": tokenizer_label(tokenizer), "text": self.text,
                "input_ids": self.input_ids, "tokens": tokenizer.convert_ids_to_tokens(self.input_ids),
                "labels": self.labels, "learned_tokens": self.learned, "total_tokens": len(self.labels)}


def tokenizer_label(tokenizer) -> str:
    """Which tokenizer measured the lengths: its name or folder and its vocabulary size.

    The Python class is left out on purpose: transformers picks a different class for the same files
    depending on how they were loaded, and users compare these lines between runs.
    """
    name = str(getattr(tokenizer, "name_or_path", "") or "")
    shown = Path(name).name if name and Path(name).exists() else name
    return f"{shown or 'unnamed'} ({len(tokenizer):,} tokens)"


def sample_view(tokenizer, template: str, conversation: dict[str, Any], recipe, *, record: str) -> SampleView:
    """Render, tokenize and mask one record (``Conversation.to_json()``) exactly as training does.

    ``recipe.system`` (its placeholders filled from ``variables:``) and whitespace normalisation are applied as
    ``prepare_for_training`` applies them.
    Raises TemplateRefused when the model's template cannot render it.
    """
    from ftwiz.core.data.clean import normalise_whitespace
    from ftwiz.core.data.records import Conversation
    from ftwiz.core.data.template import tokenize_with_labels
    from ftwiz.core.data.tokenize import render_record

    conv = normalise_whitespace(Conversation.from_json({**conversation, "messages": [
        dict(m) for m in conversation["messages"]]}))
    from ftwiz.core.recipe_inputs import filled_system

    system = filled_system(recipe)[0] if getattr(recipe, "system", None) else None  # {{name}} filled, as trained
    if system and conv.messages and conv.messages[0]["role"] not in ("system", "text"):
        conv.messages.insert(0, {"role": "system", "content": system})
    text, spans = render_record(tokenizer, template, conv.to_json(), recipe)
    row = tokenize_with_labels(tokenizer, [text], [spans])
    return SampleView(text, list(row["input_ids"][0]), list(row["labels"][0]), record)


def learned_segments(tokenizer, view: SampleView) -> list[Segment]:
    """The rendered text cut where learning starts or stops, every character intact."""
    offsets = None
    if getattr(tokenizer, "is_fast", False):
        encoding = tokenizer.backend_tokenizer.encode(view.text, add_special_tokens=False)
        if encoding.ids == view.input_ids:
            offsets = encoding.offsets
    if offsets is None:
        return token_segments(tokenizer, view.input_ids, view.labels)
    learned = [False] * len(view.text)
    for (start, end), label in zip(offsets, view.labels, strict=True):
        if label != -100:
            learned[start:end] = [True] * (end - start)
    segments: list[Segment] = []
    run_start = 0
    for i in range(1, len(view.text) + 1):
        if i == len(view.text) or learned[i] != learned[run_start]:
            segments.append((view.text[run_start:i], learned[run_start]))
            run_start = i
    return segments


def token_segments(tokenizer, input_ids: list[int], labels: list[int]) -> list[Segment]:
    """Token ids decoded in groups of tokens that form whole characters (no U+FFFD halves)."""
    segments: list[Segment] = []
    group: list[int] = []
    learned = False
    for i, (token_id, label) in enumerate(zip(input_ids, labels, strict=True)):
        group.append(token_id)
        learned = learned or label != -100
        if i < len(input_ids) - 1 and len(group) < 8 and _split(tokenizer, group):
            continue  # this token ends inside a character: decode it with the next one
        segments.append((tokenizer.decode(group, skip_special_tokens=False), learned))
        group, learned = [], False
    return segments


def _split(tokenizer, ids: list[int]) -> bool:
    """Whether these tokens end inside a character (their decoding ends in the replacement character)."""
    return tokenizer.decode(ids, skip_special_tokens=False).endswith("\ufffd")


def masked_sample(tokenizer, prepared, index: int = 0) -> tuple[list[Segment], int, int]:
    """One prepared training row (packed rows included) as the model sees it: (segments, learned, total)."""
    row = prepared.train[min(index, len(prepared.train) - 1)]
    learned = sum(1 for lab in row["labels"] if lab != -100)
    return token_segments(tokenizer, row["input_ids"], row["labels"]), learned, len(row["labels"])


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
    documents = documents_line(train, cutoff_len)
    if documents:
        lines.append(documents)
    lines.append(f"over cutoff_len {cutoff_len}: {train.get('over_cutoff', 0)} "
                 f"(dropped {train.get('dropped', 0)}, truncated {train.get('truncated', 0)})")
    steps = math.ceil(len(prepared.train) / max(1, batch_size))
    lines.append(f"estimated optimizer steps per epoch at an effective batch of {batch_size}: {steps}")
    return lines


def stats_lines(prepared, cutoff_len: int, batch_size: int) -> list[str]:
    """:func:`length_lines`, then what the data checks read, rejected and moved."""
    stats = prepared.stats
    rejected = stats.get("rejected", {})
    reasons = " (" + ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items())) + ")" if rejected else ""
    return [*length_lines(prepared, cutoff_len, batch_size),
            f"read {stats.get('read')}, rejected {sum(rejected.values())}{reasons}, "
            f"exact duplicates {stats.get('exact_duplicates', 0)}, "
            f"near duplicates {stats.get('near_duplicates', 0)}, "
            f"leaked prompts moved to train {stats.get('leakage_moved', 0)}"]
