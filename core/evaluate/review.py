"""``ftwiz eval --review``: a person judges base vs tuned answers, and the votes become a DPO dataset.

Metrics miss tone, helpfulness and subtle errors; a few minutes of reading answers side by side catch
them. The two answers are shown as A and B in an order shuffled per sample (seeded, so a re-run shows
the same order) so the reviewer does not learn to favour one side. Each decided vote becomes a preference
pair ``{"prompt", "chosen", "rejected"}`` (``messages`` instead of ``prompt`` for multi-turn prompts),
the format ``ftwiz data`` reads as ``dpo`` and TRL's DPOTrainer accepts.

Keys: ``a`` / ``b`` pick an answer, ``r`` says the reference is better than both (the pair becomes
reference over the tuned answer), ``=`` is a tie and ``s`` a skip (no pair either way), ``q`` stops and
keeps the votes so far.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.evaluate.report import EvalReport, SampleResult

Ask = Callable[[str], str]
CHOICES = {"a", "b", "r", "=", "s", "q"}


@dataclass
class ReviewResult:
    votes: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    votes_path: Path | None = None
    pairs_path: Path | None = None

    def count(self, winner: str) -> int:
        return sum(v["winner"] == winner for v in self.votes)


def _pair_prompt(sample: SampleResult, system: str | None) -> dict:
    """Single-turn prompts as a string (the recipe's system prompt is re-added by training); else messages."""
    messages = [m for m in sample.prompt if not (m["role"] == "system" and m["content"] == system)]
    if len(messages) == 1 and messages[0]["role"] == "user":
        return {"prompt": messages[0]["content"]}
    return {"messages": messages}


def _ask_choice(ask: Ask, say: Callable[[str], None]) -> str:
    while True:
        try:
            answer = ask("better answer? [a/b], r = reference beats both, = tie, s skip, q quit: ").strip().lower()
        except EOFError:  # input closed (piped answers ran out): keep the votes so far
            return "q"
        if answer in CHOICES:
            return answer
        say(f"please type one of: {', '.join(sorted(CHOICES))}")


def review(report: EvalReport, out_dir: Path, *, ask: Ask = input, say: Callable[[str], None] = print,
           seed: int = 0) -> ReviewResult:
    """Walk through the samples, ask for a vote on each, and write ``review.jsonl`` and ``preferences.jsonl``.

    ``say`` shows one plain line (the CLI prints it with markup off: answers may hold square brackets).
    """
    result = ReviewResult()
    if report.model("base") is None:
        say("review needs a base model to compare with; pass --base MODEL")
        return result
    candidates = [s for s in report.samples if s.outputs.get("base", "") != s.outputs.get("tuned", "")]
    say(f"{len(candidates)} samples where base and tuned answers differ "
        f"({len(report.samples) - len(candidates)} identical ones skipped)")
    for n, sample in enumerate(candidates, start=1):
        flip = random.Random(seed * 100_003 + sample.index).random() < 0.5
        sides = ("tuned", "base") if flip else ("base", "tuned")
        say("")
        say(f"--- sample {n}/{len(candidates)} (#{sample.index}) ---")
        for message in sample.prompt:
            say(f"[{message['role']}] {message['content']}")
        say(f"[reference] {sample.reference}")
        say(f"[A] {sample.outputs[sides[0]] or '(empty answer)'}")
        say(f"[B] {sample.outputs[sides[1]] or '(empty answer)'}")
        choice = _ask_choice(ask, say)
        if choice == "q":
            break
        winner = {"a": sides[0], "b": sides[1], "r": "reference", "=": "tie", "s": "skip"}[choice]
        result.votes.append({"index": sample.index, "winner": winner, "shown_as_a": sides[0]})
        if winner in ("base", "tuned"):
            loser = "base" if winner == "tuned" else "tuned"
            chosen, rejected = sample.outputs[winner], sample.outputs[loser]
        elif winner == "reference":
            chosen, rejected = sample.reference, sample.outputs["tuned"]
        else:
            continue
        if chosen.strip() and chosen != rejected:
            result.pairs.append({**_pair_prompt(sample, report.generation.system_prompt),
                                 "chosen": chosen, "rejected": rejected})
    if result.votes:
        result.votes_path = write_text_atomic(out_dir / "review.jsonl",
                                              "".join(json.dumps(v) + "\n" for v in result.votes))
    if result.pairs:
        result.pairs_path = write_text_atomic(out_dir / "preferences.jsonl",
                                              "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in result.pairs))
    say("")
    say(f"tuned better: {result.count('tuned')}, base better: {result.count('base')}, "
        f"reference better: {result.count('reference')}, ties: {result.count('tie')}, skipped: {result.count('skip')}")
    if result.pairs_path:
        say(f"{len(result.pairs)} preference pairs saved to {result.pairs_path} (format: dpo)")
    return result
