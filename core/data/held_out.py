"""The validation and test splits held to ``cutoff_len`` as the training split is, and what is said about it.

Why: ``ftwiz eval`` scores the test split and training reports a loss on the validation split. A held-out
record longer than ``cutoff_len`` is one training never sees whole: with ``overlength: drop`` training
leaves such records out, so the held-out splits do too (each one in ``rejects.jsonl``, its message
starting with the split's name); with ``overlength: truncate`` they stay, and their loss is measured on
their first ``cutoff_len`` tokens, as training truncates them.
"""

from __future__ import annotations

from collections import Counter

from ftwiz.core.data.records import Reject

HELD_OUT = ("validation", "test")


def mark_held_out(reject: Reject, split: str) -> Reject:
    """The reject with its split named first in its message ('test split: 80 tokens > cutoff_len 64')."""
    reject.message = f"{split} split: {reject.message}"
    return reject


def held_out_line(left_out: dict[str, list[Reject]], kept: dict[str, int], truncated: dict[str, int],
                  cutoff_len: int) -> str | None:
    """What became of the held-out records longer than ``cutoff_len`` (or refused by the template), in the
    words training's 'records are not trained' line uses; None when nothing was left out or truncated.

    ``left_out``: split -> its rejects; ``kept``: split -> records kept in it; ``truncated``: split -> records
    kept but longer than ``cutoff_len``. Returns e.g. '2 of 24 held-out records (validation 1, test 1) are
    not evaluated (over_max_length 2), ...; 22 remain (validation 11, test 11); ...'.
    """
    rejects = [r for split in HELD_OUT for r in left_out.get(split, [])]
    total = sum(kept.get(split, 0) for split in HELD_OUT) + len(rejects)
    parts = []
    if rejects:
        per_split = ", ".join(f"{split} {len(left_out[split])}" for split in HELD_OUT if left_out.get(split))
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(Counter(r.reason for r in rejects).items()))
        why = f" (over_max_length: longer than cutoff_len {cutoff_len} tokens)" if "over_max_length" in reasons else ""
        remain = ", ".join(f"{split} {kept.get(split, 0)}" for split in HELD_OUT)
        parts.append(f"{len(rejects)} of {total} held-out records ({per_split}) are not evaluated ({reasons}), as "
                     f"training leaves such records out{why}; {total - len(rejects)} remain ({remain}); each left "
                     "out is listed in rejects.jsonl, its message starting with its split")
    cut = sum(truncated.get(split, 0) for split in HELD_OUT)
    if cut:
        per_split = ", ".join(f"{split} {truncated[split]}" for split in HELD_OUT if truncated.get(split))
        parts.append(f"{cut} of {total} held-out records ({per_split}) are longer than cutoff_len {cutoff_len} "
                     f"tokens and truncated as training truncates them (overlength: truncate): their loss is "
                     f"measured on their first {cutoff_len} tokens")
    return "; ".join(parts) or None
