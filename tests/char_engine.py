"""An eval engine for tests of what eval sends and scores: one token per character, answering "x".

It records every prompt it generates from and every text whose loss it scores, so a test can compare them
with what ``apply_chat_template`` renders (the model itself plays no part in those checks).
"""

from __future__ import annotations


class CharEngine:
    kind = "fake"
    path = "fake"
    context_length = 100_000

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.scored: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def detokenize(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)

    def greedy(self, prompt_ids: list[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        self.prompts.append(self.detokenize(prompt_ids))
        return [ord("x")]

    def nll(self, ids: list[int], start: int) -> tuple[float, int]:
        self.scored.append(self.detokenize(ids[start:]))
        return 0.0, len(ids) - start

    def token_id(self, text: str) -> int | None:
        return ord(text) if len(text) == 1 else None  # one character, one token
