"""Render, tokenize and mask one split with ``datasets`` (Arrow; batched ``map``; parallel when large)."""

from __future__ import annotations

import os
from typing import Any

from ftwiz.core.data.records import Conversation, Reject
from ftwiz.core.data.template import render_with_spans, tokenize_with_labels, verify_masks

PARALLEL_FROM = 20_000  # below this, worker start-up costs more than it saves
VERIFY_SAMPLE = 32  # records per split whose masks are decoded and checked


def _sft_messages(conv: dict[str, Any]) -> list[dict[str, str]]:
    """Preference records are trained on the chosen answer when used for supervised fine-tuning."""
    messages = list(conv["messages"])
    if conv.get("chosen") is not None:
        messages.append({"role": "assistant", "content": conv["chosen"]})
    return messages


def tokenize_split(tokenizer, template: str, convs: list[Conversation], recipe) -> tuple[Any, dict[str, Any]]:
    import numpy as np
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # ftwiz reports progress through its own events

    rows = [{"conversation": c.to_json(), "record": i} for i, c in enumerate(convs)]
    ds = Dataset.from_list([{"messages_json": _json(r["conversation"]), "record": r["record"]} for r in rows])

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts, spans = [], []
        for raw in batch["messages_json"]:
            text, text_spans = render_with_spans(tokenizer, template, _sft_messages(_load(raw)),
                                                 train_on_prompt=recipe.train_on_prompt,
                                                 mask_history=recipe.mask_history)
            texts.append(text)
            spans.append(text_spans)
        out = tokenize_with_labels(tokenizer, texts, spans)
        out["length"] = [len(ids) for ids in out["input_ids"]]
        out["learned"] = [sum(1 for t in labels if t != -100) for labels in out["labels"]]
        return out

    num_proc = min(4, os.cpu_count() or 1) if len(ds) >= PARALLEL_FROM else None
    ds = ds.map(encode, batched=True, batch_size=512, num_proc=num_proc, desc=None)
    lengths = np.asarray(ds["length"], dtype=np.int64)
    sample = ds.select(range(min(VERIFY_SAMPLE, len(ds))))
    verify_masks(tokenizer, [dict(r) for r in sample], [_sft_messages(_load(r["messages_json"])) for r in sample],
                 mask_history=recipe.mask_history, train_on_prompt=recipe.train_on_prompt)

    over = lengths > recipe.cutoff_len
    stats: dict[str, Any] = {"samples": int(len(ds)), "over_cutoff": int(over.sum()), "truncated": 0, "dropped": 0,
                             "length_p50": _pct(lengths, 50), "length_p90": _pct(lengths, 90),
                             "length_p99": _pct(lengths, 99), "length_max": int(lengths.max(initial=0)),
                             "lengths": lengths.tolist()}
    rejects: list[Reject] = []
    if over.any():
        if recipe.overlength == "truncate":
            cutoff = recipe.cutoff_len
            ds = ds.map(lambda b: {k: [v[:cutoff] for v in b[k]] for k in ("input_ids", "attention_mask", "labels")},
                        batched=True)
            stats["truncated"] = int(over.sum())
        else:
            for i in np.nonzero(over)[0].tolist():
                src = convs[i].source
                rejects.append(Reject(src.file if src else "?", src.line if src else None, src.index if src else i,
                                      "over_max_length", f"{int(lengths[i])} tokens > cutoff_len {recipe.cutoff_len}",
                                      raw=convs[i].to_json()))
            ds = ds.select(np.nonzero(~over)[0].tolist())
            stats["dropped"] = int(over.sum())
    if stats.get("truncated"):  # truncation may have cut every learned token of a sample
        nothing_learned = [i for i, labels in enumerate(ds["labels"]) if all(t == -100 for t in labels)]
    else:  # counted inside the map: no pass over every label in Python here
        nothing_learned = np.nonzero(np.asarray(ds["learned"], dtype=np.int64) == 0)[0].tolist()
    if nothing_learned:
        dropped = set(nothing_learned)
        ds = ds.select([i for i in range(len(ds)) if i not in dropped])
        stats["no_learned_tokens"] = len(nothing_learned)
    if recipe.packing:
        ds = pack(ds, recipe.cutoff_len)
        stats["packed_sequences"] = len(ds)
    stats["reject_objects"] = rejects
    keep = [c for c in ("input_ids", "attention_mask", "labels", "position_ids") if c in ds.column_names]
    return ds.select_columns(keep), stats


def pack(ds, cutoff: int):
    """Greedy packing into sequences of at most ``cutoff`` tokens. ``position_ids`` restart at each sample,
    which attention implementations that support it (FlashAttention-2 varlen) use to keep samples apart.
    """
    from datasets import Dataset

    packed: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": [], "position_ids": []}
    current: dict[str, list] = {k: [] for k in packed}
    for row in ds:
        if current["input_ids"] and len(current["input_ids"]) + len(row["input_ids"]) > cutoff:
            for k in packed:
                packed[k].append(current[k])
            current = {k: [] for k in packed}
        current["input_ids"] += row["input_ids"]
        current["attention_mask"] += row["attention_mask"]
        current["labels"] += row["labels"]
        current["position_ids"] += list(range(len(row["input_ids"])))
    if current["input_ids"]:
        for k in packed:
            packed[k].append(current[k])
    return Dataset.from_dict(packed)


def _pct(values, q: int) -> int:
    import numpy as np

    return int(np.percentile(values, q)) if len(values) else 0


def _json(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)


def _load(text: str) -> dict[str, Any]:
    import json

    return json.loads(text)
