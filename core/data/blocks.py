"""Raw-text documents longer than ``cutoff_len``: consecutive blocks, every token kept.

Continued pre-training (``stage: pt``, the ``text`` format) learns a domain corpus, which is mostly long
documents. As in Hugging Face's ``run_clm`` (``group_texts``) and LLaMA-Factory's pre-training
preprocessing, a document (its text plus the EOS token, see ``template.render_with_spans``) longer than
``cutoff_len`` tokens becomes consecutive blocks of ``cutoff_len`` tokens and a last, shorter one: the blocks
joined give the document's token ids back, nothing is truncated or dropped (LLaMA-Factory drops the
remainder of its concatenated stream; ftwiz keeps it: packing fills its row with other documents).

Each block is a sample of its own: with packing, its ``position_ids`` restart at 0 and it attends to no
other block, as a ``group_texts`` block does. Continuing the positions instead would show the model
positions past ``cutoff_len`` without the text that came before them -- a context it never has at
inference. So a block's first token is context only (it has no preceding token in its sequence to be
predicted from): a document of L tokens in k blocks trains on L - k next-token targets, as ``run_clm`` does.

Conversations (SFT) are not split: cutting a conversation mid-answer changes what it teaches, so those
keep ``overlength: drop | truncate`` and are reported as rejects or counted as truncated.
"""

from __future__ import annotations

import math
from typing import Any

SPLIT_COLUMNS = ("input_ids", "attention_mask", "labels")


def is_document(conv: dict[str, Any]) -> bool:
    """Whether a record (``Conversation.to_json()``) is raw text (the ``text`` format) rather than a conversation."""
    messages = conv.get("messages") or []
    return bool(messages) and messages[0].get("role") == "text"


def block_count(length: int, cutoff: int) -> int:
    """Blocks of at most ``cutoff`` tokens that a document of ``length`` tokens becomes (at least 1)."""
    return max(1, math.ceil(length / cutoff))


def split_documents(ds, cutoff: int, is_doc: list[bool]):
    """``ds`` with every document row (``is_doc[i]``) longer than ``cutoff`` replaced, in place, by its
    consecutive blocks of ``cutoff`` tokens (the last one shorter); other rows are unchanged.

    Rows hold ``input_ids``/``attention_mask``/``labels`` (split) and per-record columns (copied to each
    block); ``length`` and ``learned`` are recomputed per block.
    """
    columns = list(ds.column_names)
    flags = list(is_doc)

    def expand(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in columns}
        for row, index in enumerate(indices):
            size = len(batch["input_ids"][row])
            starts = range(0, size, cutoff) if flags[index] and size > cutoff else range(0, 1)
            for start in starts:
                end = start + cutoff if flags[index] and size > cutoff else size
                for key in columns:
                    value = batch[key][row]
                    out[key].append(value[start:end] if key in SPLIT_COLUMNS else value)
                if "length" in out:
                    out["length"][-1] = len(out["input_ids"][-1])
                if "learned" in out:
                    out["learned"][-1] = sum(1 for t in out["labels"][-1] if t != -100)
        return out

    return ds.map(expand, batched=True, with_indices=True, remove_columns=columns, desc=None)


def documents_line(stats: dict[str, Any], cutoff: int) -> str | None:
    """``"12 documents -> 40 training blocks of <= 1024 tokens (9 longer documents split, none cut)"``, or
    None when the split holds no raw-text documents."""
    documents = stats.get("documents")
    if not documents:
        return None
    split = stats.get("documents_split", 0)
    how = f"{split} longer document{'s' if split != 1 else ''} split into consecutive blocks" if split else \
        "none longer than cutoff_len"
    return (f"{documents} document{'s' if documents != 1 else ''} -> {stats.get('blocks', documents)} training "
            f"block{'s' if stats.get('blocks', documents) != 1 else ''} of <= {cutoff} tokens ({how}; "
            "no token cut, EOS after each document)")


def count_blocks(tokenizer, template: str, convs: list, recipe) -> dict[str, int] | None:
    """What training will make of the raw-text records in ``convs`` (``Conversation`` objects), rendered and
    tokenized as training does: ``{"documents", "blocks", "documents_split"}``; None when there are none."""
    from ftwiz.core.data.clean import normalise_whitespace
    from ftwiz.core.data.records import Conversation
    from ftwiz.core.data.template import tokenize_with_labels
    from ftwiz.core.data.tokenize import render_record

    texts, spans = [], []
    for conv in convs:
        record = conv.to_json()
        if not is_document(record):
            continue
        copy = normalise_whitespace(Conversation.from_json({**record, "messages": [dict(m) for m in record["messages"]]}))
        text, text_spans = render_record(tokenizer, template, copy.to_json(), recipe)
        texts.append(text)
        spans.append(text_spans)
    if not texts:
        return None
    lengths = [len(ids) for ids in tokenize_with_labels(tokenizer, texts, spans)["input_ids"]]
    cutoff = recipe.cutoff_len
    return {"documents": len(lengths), "blocks": sum(block_count(n, cutoff) for n in lengths),
            "documents_split": sum(1 for n in lengths if n > cutoff)}
