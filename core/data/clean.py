"""Whitespace normalisation, exact and near-duplicate removal, mixing, and a seeded split.

Near-duplicates use MinHash over word 3-gram shingles with LSH (datasketch): cost grows linearly
with the data instead of comparing every pair.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata

from ftwiz.core.data.reasoning import REASONING_KEYS
from ftwiz.core.data.records import Conversation


def normalise_text(text: str) -> str:
    """Line endings to LF, Unicode to NFC, and the whitespace around the whole text removed.

    Nothing inside changes: blank lines and spaces at line ends are content (PEP 8's two blank lines
    between functions, Markdown's two-space line break, a document's layout), trained as written."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def normalise_whitespace(conv: Conversation) -> Conversation:
    for message in conv.messages:
        message["content"] = normalise_text(message["content"])
        for key in REASONING_KEYS:
            if message.get(key):
                message[key] = normalise_text(message[key])
    if conv.chosen is not None:
        conv.chosen = normalise_text(conv.chosen)
        conv.rejected = normalise_text(conv.rejected or "")
    return conv


def content_key(conv: Conversation) -> str:
    return hashlib.sha256(json.dumps(conv.to_json(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def prompt_key(conv: Conversation) -> str:
    """What the model is asked: every non-assistant turn, plus the tools it was offered (when any)."""
    prompt: object = [m for m in conv.messages if m["role"] != "assistant"]
    if conv.tools:
        prompt = {"messages": prompt, "tools": conv.tools}
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _message_text(message: dict) -> str:
    """A turn's text for similarity; a tool-call turn (content "") is compared by its calls."""
    calls = message.get("tool_calls")
    return message["content"] + (" " + json.dumps(calls, ensure_ascii=False) if calls else "")


def exact_dedup(convs: list[Conversation]) -> tuple[list[Conversation], list[Conversation]]:
    seen: set[str] = set()
    kept, dropped = [], []
    for conv in convs:
        key = content_key(conv)
        (dropped if key in seen else kept).append(conv)
        seen.add(key)
    return kept, dropped


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 3:
        return {" ".join(words)} if words else {""}
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def near_dedup(convs: list[Conversation], threshold: float, num_perm: int = 64) -> tuple[list, list]:
    """Drop records whose MinHash Jaccard similarity to an earlier kept record is >= threshold.

    A preference pair is a near-duplicate of an earlier pair only when both its prompt + chosen and its
    prompt + rejected texts are: pairs that share a prompt and a chosen answer but reject different answers
    (several rejected answers per prompt) each teach something."""
    from datasketch import MinHash, MinHashLSH

    def minhash(text: str) -> MinHash:
        mh = MinHash(num_perm=num_perm, seed=1)
        mh.update_batch([s.encode() for s in _shingles(text)])
        return mh

    lsh, lsh_rejected = MinHashLSH(threshold=threshold, num_perm=num_perm), MinHashLSH(threshold=threshold,
                                                                                      num_perm=num_perm)
    kept, dropped = [], []
    for i, conv in enumerate(convs):
        prompt = " ".join(_message_text(m) for m in conv.messages)
        mh = minhash(prompt + " " + (conv.chosen or ""))
        similar = set(lsh.query(mh))
        mh_rejected = minhash(prompt + " " + conv.rejected) if conv.rejected is not None else None
        if mh_rejected is not None:
            similar &= set(lsh_rejected.query(mh_rejected))
        if similar:
            dropped.append(conv)
            continue
        lsh.insert(str(i), mh)
        if mh_rejected is not None:
            lsh_rejected.insert(str(i), mh_rejected)
        kept.append(conv)
    return kept, dropped


def split(convs: list[Conversation], val_size: float, test_size: float, seed: int) -> dict[str, list[Conversation]]:
    """Seeded shuffle then cut. ``val_size`` is a share of the records, or (1 or more) a number of them; the
    sizes are :func:`ftwiz.core.recipe_values.held_out_counts`'s (tiny datasets keep everything for training
    rather than a 1-record eval)."""
    from ftwiz.core.recipe_values import held_out_counts

    order = list(range(len(convs)))
    random.Random(seed).shuffle(order)
    n_val, n_test = held_out_counts(len(order), val_size, test_size)
    test = [convs[i] for i in order[:n_test]]
    val = [convs[i] for i in order[n_test : n_test + n_val]]
    train = [convs[i] for i in order[n_test + n_val :]]
    return {"train": train, "validation": val, "test": test}


def remove_leakage(splits: dict[str, list[Conversation]]) -> int:
    """Move held-out records whose prompt also appears in train back into train; return how many moved.

    A prompt seen in training makes eval numbers look better than the model is.
    """
    train_prompts = {prompt_key(c) for c in splits["train"]}
    moved = 0
    for name in ("validation", "test"):
        keep = []
        for conv in splits[name]:
            if prompt_key(conv) in train_prompts:
                splits["train"].append(conv)
                moved += 1
            else:
                keep.append(conv)
        splits[name] = keep
    held_val = {prompt_key(c) for c in splits["validation"]}
    test_keep = []
    for conv in splits["test"]:
        if prompt_key(conv) in held_val:
            splits["validation"].append(conv)
            moved += 1
        else:
            test_keep.append(conv)
    splits["test"] = test_keep
    return moved


def mix_in(train: list[Conversation], general: list[Conversation], ratio: float, seed: int) -> list[Conversation]:
    """Add general records so they make up ``ratio`` of the training set (against forgetting)."""
    if ratio <= 0 or not general:
        return train
    wanted = int(round(len(train) * ratio / (1 - ratio))) if ratio < 1 else len(general)
    rng = random.Random(seed)
    picks = [general[rng.randrange(len(general))] for _ in range(wanted)]
    mixed = train + picks
    rng.shuffle(mixed)
    return mixed
