"""Held-out raw text (continued pre-training, ``stage: pt``): perplexity over the blocks training used.

A pt run's splits hold documents (``{"messages": [{"role": "text", "content": ...}]}``, what the data pipeline
writes for the ``text`` format), not questions with answers, so there is nothing to generate and compare.
What such a run learns is measured the way it was trained (``core/data/blocks.py``): each document is its
text plus the EOS token, tokenized without added special tokens, cut into consecutive blocks of
``cutoff_len`` tokens; every token of a block is a target except its first, which has nothing before it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftwiz.core.data.blocks import is_document
from ftwiz.core.errors import FtwizError, Location


def _document(record: object) -> str | None:
    """The text of a raw-text record (a prepared split's or ``{"text": ...}``), else None."""
    if not isinstance(record, dict):
        return None
    if is_document(record) and isinstance(record["messages"][0].get("content"), str):
        return record["messages"][0]["content"]
    if set(record) == {"text"} and isinstance(record["text"], str):
        return record["text"]
    return None


def load_documents(path: Path, *, max_samples: int | None = None) -> list[str] | None:
    """The documents of ``path`` (a JSONL split or file, or a .txt read one record a line) when every record
    is raw text; None when it holds anything else (conversations, pairs: the answer-based evaluation)."""
    if not path.is_file():
        return None
    if path.suffix == ".txt":
        from ftwiz.core.data.text_files import read_text_file

        texts = [r.data["text"] for r in read_text_file(path)]
    else:
        texts = []
        try:
            raw_lines = path.read_bytes().decode("utf-8-sig").split("\n")
        except UnicodeDecodeError:
            return None  # load_samples names the file's encoding
        for raw in raw_lines:
            if not raw.strip():
                continue
            try:
                text = _document(json.loads(raw))
            except json.JSONDecodeError:
                return None  # load_samples names the line
            if text is None:
                return None
            texts.append(text)
    if not texts:
        return None
    return texts[:max_samples] if max_samples is not None else texts


def documents_loss(engine, documents: list[str], *, eos_token: str | None, cutoff: int,
                   progress=lambda done, total: None) -> tuple[float, int]:
    """Summed next-token loss (nats) and the number of tokens scored over ``documents``, in the same
    ``cutoff``-token blocks as training. Raises FtwizError for a cutoff below 2 tokens."""
    from ftwiz.core.evaluate.runner import text_loss

    if cutoff < 2:
        raise FtwizError(f"cutoff_len {cutoff} leaves no token to score", where=Location(field="cutoff_len"),
                         fix="train with cutoff_len of at least 16")
    total, count = 0.0, 0
    for i, text in enumerate(documents):
        loss, n = text_loss(engine, text + (eos_token or ""), block=cutoff)
        total += loss
        count += n
        progress(i + 1, len(documents))
    return total, count


def note(documents: int, tokens: int, cutoff: int, *, held_out: bool = True) -> str:
    """What the pt perplexity measures, for report.md and the CLI; ``held_out`` False for text training may
    have seen (--split train, a --data file)."""
    which = "the held-out raw text" if held_out else "the raw text (not a held-out split: training may have seen it)"
    return (f"continued pre-training: perplexity of {which} ({documents} documents, {tokens} tokens "
            f"scored) in the same blocks of <= {cutoff} tokens training used; there are no answers to generate, "
            "so no ROUGE/BLEU")
