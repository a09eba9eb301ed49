"""The evaluated samples held to the run's ``cutoff_len`` as training held its records.

Why: a sample longer than ``cutoff_len`` is one training never saw whole. ``ftwiz data prepare``/``train``
keep such records out of a run's ``test.jsonl`` (``overlength: drop``), but a split prepared by an older
ftwiz, or a ``--data`` file, may hold them, and eval used to score them cut at ``cutoff_len`` without a
word. With ``overlength: drop`` they are left out (said in the report's warnings); with ``truncate`` they are
scored on their first ``cutoff_len`` tokens, as training truncated them, and that is said too.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.evaluate.samples import EvalSample


def _length(sample: EvalSample, engine: Any, renderer: Any) -> int:
    """Tokens of the sample as trained: prompt + reference; a preference pair by its longer answer (training
    keeps or drops a pair whole, measured so)."""
    answers = [sample.conversation]
    if sample.rejected is not None:
        answers.append([*sample.prompt, {"role": "assistant", "content": sample.rejected}])
    return max(len(engine.tokenize(renderer.render(messages, generation_prompt=False, tools=sample.tools)))
               for messages in answers)


def hold_to_cutoff(samples: list[EvalSample], engine: Any, renderer: Any, *, cutoff: int,
                   overlength: str | None) -> tuple[list[EvalSample], str | None]:
    """(the samples to score, the warning to report or None). ``overlength``: the run's policy; None (no run
    known, so no cutoff_len of record) keeps every sample and says nothing. FtwizError when none is left."""
    if overlength is None or not samples:
        return samples, None
    over = [i for i, sample in enumerate(samples) if _length(sample, engine, renderer) > cutoff]
    if not over:
        return samples, None
    n = len(samples)
    if overlength == "truncate":
        return samples, (f"{len(over)} of {n} samples are longer than cutoff_len {cutoff} tokens: their loss is "
                         f"measured on their first {cutoff} tokens, as training truncated such records "
                         "(overlength: truncate)")
    if len(over) == n:
        raise FtwizError(f"every one of the {n} samples is longer than the run's cutoff_len {cutoff} tokens, and "
                         "training leaves such records out (overlength: drop)", where=Location(field="cutoff_len"),
                         fix="evaluate on records training could see whole (prepare the data again with "
                             "`ftwiz data prepare`, or pass --data FILE)")
    dropped = set(over)
    return [s for i, s in enumerate(samples) if i not in dropped], (
        f"{len(over)} of {n} samples are longer than cutoff_len {cutoff} tokens and are not scored, as training "
        "leaves such records out (over_max_length, overlength: drop): it never saw them whole")
