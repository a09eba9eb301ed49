"""SentencePiece-family vocabularies (Llama 2, Mistral, TinyLlama, Phi-3, Gemma) from ``tokenizer.json`` alone.

transformers 5 saves these tokenizers without ``tokenizer.model``: ``tokenizer.json`` then holds a BPE model
with ``byte_fallback`` (the SentencePiece BPE model converted by transformers), its merges, and the added
tokens. llama.cpp runs such a GGUF with its SentencePiece tokenizer (``tokenizer.ggml.model = "llama"``),
which repeatedly joins the adjacent pair whose joined text is the token with the highest *score*. So the
scores must rank tokens exactly as the merges do.

Facts used (SentencePiece's BPE trainer; transformers' converters; the published Llama 2/Mistral files):

- SentencePiece gives the k-th learnt piece the score ``-k`` and stores learnt pieces in that order after
  the special and byte pieces, so ``-(position among the NORMAL pieces)`` reproduces tokenizer.model's
  scores; transformers lists the merges in the same order, which is checked here;
- Llama 2 and Mistral append runs of '▁' (and '▁' itself) with score -1e9: their merges come last in the
  published tokenizer.json and get -1e9 here. transformers 5 re-derives merges in vocabulary order (runs
  of '▁' first); the scores then follow that order, as its tokenization does;
- a tokenizer whose merges follow neither order (trained with another tool) is scored by merge rank;
- ``<0xNN>`` pieces are byte fallbacks (BYTE), the model's ``unk_token`` is UNKNOWN, added tokens are
  CONTROL when special and USER_DEFINED otherwise; tokens added past the SentencePiece vocabulary score
  -1000 as llama.cpp's converter writes them, padding rows are UNUSED.

llama.cpp's own converter (``LlamaHfVocab``) writes -1000 for every score, so its SentencePiece tokenizer
joins leftmost pairs first instead of in merge order; ranking by merges avoids that. Where '▁' goes in
front of text is read from the file's normalizer / pre-tokenizer (:func:`prepend_scheme`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

log = logging.getLogger(__name__)

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")
SPACE = "\u2581"  # SentencePiece's visible space
LAST_SCORE = -1e9  # Llama 2 / Mistral tokenizer.model: pieces ranked after all learnt ones


def is_spm_bpe_json(tokenizer_json: dict[str, Any]) -> bool:
    """A SentencePiece BPE model converted to tokenizer.json: BPE with byte fallback (not byte-level BPE)."""
    model = tokenizer_json.get("model") or {}
    return model.get("type") == "BPE" and bool(model.get("byte_fallback", False))


def _merge_pairs(merges: list[Any]) -> list[tuple[str, str]]:
    """Merges as (left, right): tokenizer.json stores either "a b" strings or [a, b] lists."""
    pairs = []
    for merge in merges:
        if isinstance(merge, str):
            left, _, right = merge.partition(" ")
            pairs.append((left, right))
        else:
            pairs.append((merge[0], merge[1]))
    return pairs


def prepend_scheme(tokenizer_json: dict[str, Any] | None) -> str | None:
    """Where the tokenizer.json puts '▁' in front of text: "always" (every text segment: the Llama 2
    layout's Prepend normalizer, or Metaspace "always"), "first" (only at the start of the whole input:
    Metaspace "first", what transformers 5 saves for LlamaTokenizer), "never", or None without a file.

    The file, not the tokenizer class, decides: a model fine-tuned and saved with transformers holds the
    pipeline it was trained with (transformers 5 writes its rebuilt Metaspace pipeline on save_pretrained).
    """
    if tokenizer_json is None:
        return None

    def parts(item: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
        item = item or {}
        return list(item.get(key) or []) if item.get("type") == "Sequence" else [item]

    for norm in parts(tokenizer_json.get("normalizer"), "normalizers"):
        if norm.get("type") == "Prepend" and norm.get("prepend") == SPACE:
            return "always"
    for pre in parts(tokenizer_json.get("pre_tokenizer"), "pretokenizers"):
        if pre.get("type") == "Metaspace":
            return pre.get("prepend_scheme") or ("always" if pre.get("add_prefix_space", True) else "never")
    return "never"


def spm_vocab_from_json(tokenizer_json: dict[str, Any], n_vocab: int, where: Path, unk_token: str | None = None
                        ) -> tuple[list[str], list[float], list[int]]:
    """(tokens, scores, types) for ``n_vocab`` embedding rows; rows past the tokenizer are UNUSED padding.
    ``unk_token``: tokenizer_config's, for files whose BPE model does not name it (transformers 5 saves).

    Raises FtwizError when the tokenizer has more tokens than the model has embedding rows.
    """
    model = tokenizer_json["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    added = {t["id"]: t for t in tokenizer_json.get("added_tokens") or []}
    size = max([n_vocab, *(i + 1 for i in vocab.values()), *(i + 1 for i in added)])
    if size > n_vocab:
        raise FtwizError(f"tokenizer has token id {size - 1} but config.json says vocab_size={n_vocab}",
                         where=Location(file=where / "config.json", field="vocab_size"),
                         fix="resize the model's embeddings to the tokenizer (model.resize_token_embeddings)")
    tokens: list[str | None] = [None] * n_vocab
    types = [UNUSED] * n_vocab
    for text, i in vocab.items():
        tokens[i], types[i] = text, BYTE if _BYTE_PIECE.fullmatch(text) else NORMAL
    for i, item in added.items():
        tokens[i] = item["content"]
        types[i] = CONTROL if item.get("special") else USER_DEFINED
    unk = model.get("unk_token") or unk_token
    if unk is not None and unk in vocab:
        types[vocab[unk]] = UNKNOWN
    # SentencePiece scores its special and byte pieces 0; tokens added after training get -1000 (as
    # llama.cpp's converter writes them), as do padding rows
    scores = [0.0 if t != UNUSED else -1000.0 for t in types]
    for i in added.keys() - set(vocab.values()):
        scores[i] = -1000.0
    _score_learnt_pieces(tokenizer_json, vocab, types, scores, where)
    return [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)], scores, types


def _score_learnt_pieces(tokenizer_json: dict[str, Any], vocab: dict[str, int], types: list[int],
                         scores: list[float], where: Path) -> None:
    """Scores of the NORMAL pieces, in place, so that llama.cpp joins pairs in the merges' order.

    SentencePiece's ``-(position among learnt pieces)``, checked against the merges; pieces the merges rank
    after every other one (the runs of '▁' Llama 2 and Mistral append with score -1e9) get that score.
    A tokenizer whose merges follow neither (trained with another tool) is scored by merge rank.
    """
    learnt = [i for i in sorted(vocab.values()) if types[i] == NORMAL]
    for position, i in enumerate(learnt):
        scores[i] = float(-position)
    first = _first_merge_ranks(tokenizer_json, vocab)
    made = sorted((rank, i) for i, rank in first.items() if types[i] == NORMAL)
    lowest, last_in_order, late = float("inf"), -1, []
    for rank, i in made:
        if scores[i] < lowest:
            lowest, last_in_order = scores[i], rank
        else:
            late.append((rank, i))
    if all(rank > last_in_order for rank, _ in late):
        for _, i in late:
            scores[i] = LAST_SCORE
        late_texts = {text for text, i in vocab.items() if (scores[i] == LAST_SCORE)}
        if late_texts and all(set(text) == {SPACE} for text in late_texts) and vocab.get(SPACE) in learnt:
            scores[vocab[SPACE]] = LAST_SCORE  # '▁' itself was appended with its runs (never a join result)
        return
    log.info("%s: merges are not in vocabulary order; scoring pieces by merge rank", where / "tokenizer.json")
    after = max(first.values(), default=0) + 1  # pieces no merge makes: below every merged one
    for position, i in enumerate(learnt):
        scores[i] = float(-first.get(i, after + position))


def _first_merge_ranks(tokenizer_json: dict[str, Any], vocab: dict[str, int]) -> dict[int, int]:
    """Token id -> rank of the first merge that makes it."""
    first: dict[int, int] = {}
    for rank, (left, right) in enumerate(_merge_pairs(tokenizer_json["model"].get("merges") or [])):
        i = vocab.get(left + right)
        if i is not None and i not in first:
            first[i] = rank
    return first
