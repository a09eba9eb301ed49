"""Special-token text written inside the data, found before training.

A tokenizer reads the text of each of its special tokens (``</s>``, ``<|im_end|>``, ``<|end|>``) as that token
wherever it appears, in a user's text as in the chat template's (transformers' default, and llama.cpp's when it
serves). A record whose answer holds ``</s>`` (as some scraped ShareGPT dumps do) therefore trains the model to
send the end-of-sequence signal at that point, mid-answer, and a ``<|im_end|>`` inside a user turn closes the
turn early. Said as a warning, never refused: raw-text data may mean a separator such as ``<|endoftext|>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ftwiz.core.data.records import Conversation

SHOWN = 5  # distinct tokens named one by one; more are counted


def special_token_texts(tokenizer) -> list[str]:
    """The texts the tokenizer turns into special tokens (its special added tokens), longest first."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    texts = {str(token.content) for token in decoder.values() if getattr(token, "special", False)}
    texts |= {str(t) for t in getattr(tokenizer, "all_special_tokens", []) or []}
    return sorted((t for t in texts if t.strip()), key=lambda t: (-len(t), t))


def _texts(conv: Conversation) -> Iterable[tuple[str, str]]:
    """(the user's field name, its text) for every text of the record a tokenizer reads."""
    for i, message in enumerate(conv.messages):
        for key in ("content", "reasoning_content"):
            text = message.get(key)
            if isinstance(text, str) and text:
                yield conv.field_of(i, key), text
    for key in ("chosen", "rejected"):
        text = getattr(conv, key)
        if isinstance(text, str) and text:
            yield key, text


class _TokenFinder:
    """Finds the special-token texts in a text in one pass: a regex finds where one could start (its first
    character), then a trie of the texts gives the longest one starting there. Checking each of a tokenizer's
    texts against each field cost seconds per 5,000 records with Mistral's 771 (and Gemma's thousands)."""

    _END = ""  # the key that marks a complete token in the trie (no token is empty)

    def __init__(self, tokens: list[str]) -> None:
        self.trie: dict[str, Any] = {}
        for token in tokens:
            node = self.trie
            for ch in token:
                node = node.setdefault(ch, {})
            node[self._END] = token
        self.starts = re.compile("[" + "".join(re.escape(ch) for ch in sorted(self.trie)) + "]") if tokens else None

    def find(self, text: str) -> list[str]:
        """The tokens in ``text``, longest match first at each place, without overlaps, in order."""
        found: list[str] = []
        if self.starts is None:
            return found
        free = 0  # a token inside one found already (e.g. '<|im' inside '<|im_end|>') is no token of its own
        for start in self.starts.finditer(text):
            i = start.start()
            if i < free:
                continue
            node, longest, j = self.trie, None, i
            while j < len(text) and text[j] in node:
                node = node[text[j]]
                j += 1
                if self._END in node:
                    longest = node[self._END]
            if longest is not None:
                found.append(longest)
                free = i + len(longest)
        return found


def find_special_text(convs: list[Conversation], tokens: list[str]) -> dict[str, tuple[str, int]]:
    """Each special-token text found in ``convs``: (where it is first, e.g. ``data.jsonl, line 3, field
    output``; how many records hold it), in order of first appearance."""
    found: dict[str, tuple[str, int]] = {}
    finder = _TokenFinder(tokens)
    for conv in convs:
        in_record: set[str] = set()
        for field, text in _texts(conv):
            for token in finder.find(text):
                if token not in in_record:
                    in_record.add(token)
                    where = (conv.source.where() if conv.source else "a record") + f", field {field}"
                    first, count = found.get(token, (where, 0))
                    found[token] = (first, count + 1)
    return found


def special_text_warnings(found: dict[str, tuple[str, int]], system: str | None, tokens: list[str]) -> list[str]:
    """One warning per special-token text in the data (``found``, from :func:`find_special_text`) and in the
    recipe's system prompt."""
    lines = []
    in_system = [t for t in tokens if system and t in system]
    for token in in_system[:SHOWN]:
        lines.append(f"the recipe's system prompt holds {token!r}, the text of a special token: the tokenizer reads "
                     "it as that token, a control signal, not as text; remove it unless it is meant as that token")
    for token, (where, count) in list(found.items())[:SHOWN]:
        more = f" (and {count - 1} more record{'s' if count > 2 else ''})" if count > 1 else ""
        lines.append(f"{where}{more}: {token!r} is the text of a special token, and the tokenizer reads it as that "
                     "token, not as text: in an answer the model learns to send that control signal there (an "
                     "end-of-turn or end-of-sequence token ends the answer at that point), in a prompt it changes "
                     "the turns the model sees; remove it from the data unless it is meant as that token")
    if len(found) > SHOWN:
        lines.append(f"{len(found) - SHOWN} more special-token texts are in the data: "
                     + ", ".join(repr(t) for t in list(found)[SHOWN:]))
    return lines
