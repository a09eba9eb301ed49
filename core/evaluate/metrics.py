"""Text metrics for held-out answers: ROUGE-L, BLEU, exact match, JSON validity and perplexity.

Each function takes plain strings so it can be checked against values worked out by hand, and uses the
implementation users already cite in papers and model cards: ROUGE-L from Google's ``rouge-score`` and
corpus BLEU from ``sacrebleu`` (its default 13a tokenizer and exponential smoothing), so a number in an
ftwiz report means the same as the number a user finds elsewhere.

Scales follow those libraries: ROUGE-L, exact match and JSON validity are fractions in [0, 1]; BLEU is
0-100 as sacrebleu prints it. Perplexity is ``exp(mean token loss)`` in nats.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 over pairs (longest common subsequence of words; rouge-score's tokenizer).

    rouge-score lower-cases and keeps only ASCII letters and digits, so punctuation and case do not count.
    """
    from rouge_score import rouge_scorer

    _check_pairs(predictions, references)
    if not predictions:
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references, strict=True)]
    return float(sum(scores) / len(scores))


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) with one reference per prediction, as ``sacrebleu`` computes it by default."""
    import sacrebleu

    _check_pairs(predictions, references)
    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def normalise_answer(text: str) -> str:
    """Whitespace-insensitive but otherwise exact: case and punctuation matter (keywords, JSON, code)."""
    return " ".join(text.split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference after collapsing whitespace."""
    _check_pairs(predictions, references)
    if not predictions:
        return 0.0
    hits = sum(normalise_answer(p) == normalise_answer(r) for p, r in zip(predictions, references, strict=True))
    return hits / len(predictions)


def parse_json_answer(text: str) -> Any | None:
    """The JSON object or array in an answer (a Markdown code fence around it is allowed), else None.

    Bare scalars ("42", "true") are not counted: an answer meant to be JSON is a structure, and counting
    scalars would call almost any short number-only answer valid JSON.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def json_validity(predictions: Sequence[str]) -> float:
    """Share of predictions that parse as a JSON object or array."""
    if not predictions:
        return 0.0
    return sum(parse_json_answer(p) is not None for p in predictions) / len(predictions)


def expects_json(references: Sequence[str]) -> bool:
    """Whether the task's answers are meant to be JSON: every reference is a JSON object or array."""
    return bool(references) and all(parse_json_answer(r) is not None for r in references)


def perplexity(mean_loss: float) -> float:
    """``exp`` of the mean per-token cross-entropy (nats); ``inf`` when it overflows a float."""
    if math.isnan(mean_loss):
        return math.nan
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


def generation_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """All answer metrics for one model; ``json_validity`` only when the references are JSON."""
    out = {
        "rouge_l": rouge_l(predictions, references),
        "bleu": bleu(predictions, references),
        "exact_match": exact_match(predictions, references),
    }
    if expects_json(references):
        out["json_validity"] = json_validity(predictions)
    return out
