"""Tokenizer to GGUF metadata: byte-level BPE from tokenizer.json (or built by transformers from vocab.json +
merges.txt, :mod:`ftwiz.core.export.vocab_slow`), SentencePiece from tokenizer.model.

The BPE pre-tokenizer name (``tokenizer.ggml.pre``) is derived from the split regex the tokenizer
actually uses, not from a hash of sample encodings: fine-tunes often add tokens, which changes every
hash and makes llama.cpp's converter reject the model ("BPE pre-tokenizer was not recognized").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.vocab_json import bpe_merges, parsed_once
from ftwiz.core.export.vocab_spm_json import is_spm_bpe_json, prepend_scheme, spm_vocab_from_json

log = logging.getLogger(__name__)

# Token types as llama.cpp stores them (gguf.TokenType values).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Split regexes of known model families (facts about the published tokenizers). Compared after
# removing whitespace, so formatting differences in tokenizer.json do not matter.
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# OpenAI's o200k split (Phi-4-mini and others reuse it): cased word pieces with trailing contractions
_GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
KNOWN_SPLITS: dict[str, str] = {_GPT2: "gpt-2", _LLAMA3: "llama-bpe", _QWEN2: "qwen2", _GPT4O: "gpt-4o"}

# Names llama.cpp recognises as end of generation when they are control tokens (eot candidates).
END_OF_TURN = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>", "<|endoftext|>")


@dataclass
class VocabData:
    """Everything the GGUF ``tokenizer.*`` keys need."""

    model: str  # "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str | None
    tokens: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    merges: Any = field(default_factory=list)  # list[str], or merges_raw.PackedStrings straight from the file
    add_space_prefix: bool | None = None
    named_ids: dict[str, int] | None = None  # END_OF_TURN names -> ids, when tokens are packed (vocab_cache)


def _squash(regex: str) -> str:
    return re.sub(r"\s", "", regex)


def _split_regexes(pre_tokenizer: dict[str, Any] | None) -> list[str]:
    if not pre_tokenizer:
        return []
    items = pre_tokenizer.get("pretokenizers") if pre_tokenizer.get("type") == "Sequence" else [pre_tokenizer]
    regexes = []
    for item in items or []:
        if item.get("type") == "Split" and isinstance(item.get("pattern"), dict):
            pattern = item["pattern"].get("Regex") or item["pattern"].get("String")
            if pattern:
                regexes.append(pattern)
        elif item.get("type") == "ByteLevel" and item.get("use_regex", True):
            regexes.append(_GPT2)
    return regexes


def detect_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer, from its split regex.

    Exact matches first; otherwise the distinguishing features (o200k splits on letter case, Llama-3 groups
    digits by 1-3, Qwen2 splits every digit, GPT-2 has case-sensitive contractions with optional leading
    spaces); ``default`` last.
    """
    regexes = [_squash(r) for r in _split_regexes(tokenizer_json.get("pre_tokenizer"))]
    known = {_squash(k): v for k, v in KNOWN_SPLITS.items()}
    for regex in regexes:
        if regex in known:
            return known[regex]
    for regex in regexes:
        if r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]" in regex:
            return "gpt-4o"
        if "(?i:'s|'t" in regex and r"\p{N}{1,3}" in regex:
            return "llama-bpe"
        if "(?i:'s|'t" in regex and r"\p{N}|" in regex:
            return "qwen2"
        if regex.startswith("'s|'t|'re") and r"?\p{L}+" in regex:
            return "gpt-2"
    log.warning("unrecognised BPE split regex; writing tokenizer.ggml.pre=default")
    return "default"


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError: saved as Latin-1/cp1252, not UTF-8
        raise FtwizError(f"not valid JSON: {getattr(exc, 'msg', exc)}", where=Location(file=path, line=getattr(
            exc, "lineno", None)), fix="restore the tokenizer files from the original model") from None


def is_byte_level_bpe(tokenizer_json: dict[str, Any]) -> bool:
    model = tokenizer_json.get("model") or {}
    decoder = tokenizer_json.get("decoder") or {}
    return model.get("type") == "BPE" and not model.get("byte_fallback", False) and decoder.get("type") == "ByteLevel"


def read_tokenizer_json(model_dir: Path) -> dict[str, Any] | None:
    """The parsed tokenizer.json (parsed once per export); for a folder with only vocab.json + merges.txt, the
    one transformers builds from them (:mod:`ftwiz.core.export.vocab_slow`); None when there is neither."""
    from ftwiz.core.export.tokenizer_json_check import checked_tokenizer_json

    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        return checked_tokenizer_json(_load_json(path), path)
    from ftwiz.core.export.vocab_slow import has_slow_bpe_files, slow_bpe_tokenizer_json

    return slow_bpe_tokenizer_json(model_dir) if has_slow_bpe_files(model_dir) else None


def tokenizer_kind(model_dir: Path, tokenizer_json: dict[str, Any] | None = None) -> str:
    """'bpe' (byte-level BPE tokenizer.json), 'spm-json' (a SentencePiece BPE model in tokenizer.json, as
    transformers 5 saves Llama 2/Mistral/Phi-3; preferred to a tokenizer.model beside it, whose scores can
    rank merges differently from the tokenizer.json training used) or 'spm' (tokenizer.model), or raise."""
    model_dir = Path(model_dir)
    tj = tokenizer_json if tokenizer_json is not None else read_tokenizer_json(model_dir)
    if tj is not None and is_byte_level_bpe(tj):
        return "bpe"
    if tj is not None and is_spm_bpe_json(tj):  # what transformers tokenizes with, tokenizer.model or not
        return "spm-json"
    if (model_dir / "tokenizer.model").is_file():
        return "spm"
    raise FtwizError(
        "no supported tokenizer found (need a byte-level BPE tokenizer.json or vocab.json + merges.txt, "
        "a SentencePiece tokenizer.model, or a tokenizer.json with a byte-fallback BPE model)",
        where=Location(file=model_dir),
        fix="copy the tokenizer files of the base model into this folder (AutoTokenizer.save_pretrained)",
    )


def _bpe_vocab(model_dir: Path, n_vocab: int, tj: dict[str, Any]) -> VocabData:
    vocab: dict[str, int] = dict(tj["model"]["vocab"])
    special: set[int] = set()
    added_normal: set[int] = set()
    for item in tj.get("added_tokens") or []:
        vocab[item["content"]] = item["id"]
        (special if item.get("special") else added_normal).add(item["id"])
    if set(map(type, vocab.values())) != {int} or min(vocab.values()) < 0:  # C-level passes over 151k ids
        text, i = next((t, i) for t, i in vocab.items() if type(i) is not int or i < 0)
        raise FtwizError(f"token {text!r} has id {i!r}; token ids are whole numbers from 0",
                         where=Location(file=model_dir / "tokenizer.json", field="model.vocab / added_tokens"),
                         fix="restore tokenizer.json from the base model")
    top = max(vocab.values())
    if top >= n_vocab:
        raise FtwizError(f"tokenizer has token id {top} but config.json says vocab_size={n_vocab}",
                         where=Location(file=model_dir / "config.json", field="vocab_size"),
                         fix="resize the model's embeddings to the tokenizer (model.resize_token_embeddings)")
    # whole-list assignments, not a loop of appends: a Qwen vocabulary has 151,936 rows
    tokens: list[str | None] = [None] * n_vocab
    for text, i in vocab.items():
        tokens[i] = text
    types = [NORMAL] * n_vocab
    for i in added_normal:
        types[i] = USER_DEFINED
    for i in special:
        types[i] = CONTROL
    # rows no token names: embedding rows beyond the tokenizer (padding for speed), or an id an added token
    # took from a vocab entry
    for i in sorted(set(range(n_vocab)).difference(vocab.values())):  # set algebra in C, not a 151k loop
        tokens[i], types[i] = f"[PAD{i}]", UNUSED
    return VocabData(model="gpt2", pre=detect_pre_tokenizer(tj), tokens=tokens, types=types)


def _spm_vocab(model_dir: Path, n_vocab: int, tj: dict[str, Any] | None) -> VocabData:
    import gguf

    try:
        spm = gguf.vocab.SentencePieceVocab(model_dir)
    except ValueError as exc:
        raise FtwizError(f"SentencePiece tokenizer is inconsistent: {exc}", where=Location(file=model_dir),
                         fix="restore tokenizer.model and added_tokens.json from the base model") from None
    data = VocabData(model="llama", pre="default")
    for text, score, toktype in spm.all_tokens():
        data.tokens.append(text.decode("utf-8"))
        data.scores.append(float(score))
        data.types.append(int(toktype))
    # tokens added in tokenizer.json only (transformers keeps added specials there)
    if tj is not None:
        for item in tj.get("added_tokens") or []:
            i = item["id"]
            if i < len(data.tokens):
                if item.get("special") and data.types[i] == NORMAL:
                    data.types[i] = CONTROL
                continue
            while len(data.tokens) < i:
                data.tokens.append(f"[PAD{len(data.tokens)}]")
                data.scores.append(-1000.0)
                data.types.append(UNUSED)
            data.tokens.append(item["content"])
            data.scores.append(-1000.0)
            data.types.append(CONTROL if item.get("special") else USER_DEFINED)
    if len(data.tokens) > n_vocab:
        raise FtwizError(f"tokenizer has {len(data.tokens)} tokens but config.json says vocab_size={n_vocab}",
                         where=Location(file=model_dir / "config.json", field="vocab_size"),
                         fix="resize the model's embeddings to the tokenizer (model.resize_token_embeddings)")
    while len(data.tokens) < n_vocab:
        data.tokens.append(f"[PAD{len(data.tokens)}]")
        data.scores.append(-1000.0)
        data.types.append(UNUSED)
    proto = _spm_proto(spm.sentencepiece_tokenizer)
    for i, piece in enumerate(proto.pieces if proto is not None else []):
        if piece.type == _SPM_USER_DEFINED and data.types[i] == NORMAL:
            data.types[i] = USER_DEFINED  # matched whole in text, as SentencePiece (and llama.cpp's converter) do
    _set_space_prefix(tj, data, default=bool(proto.normalizer_spec.add_dummy_prefix) if proto is not None else True)
    return data


_SPM_USER_DEFINED = 4  # sentencepiece ModelProto.SentencePiece.Type.USER_DEFINED


def _spm_proto(processor):
    """The SentencePiece model's protobuf (piece types, normalizer options), or None without protobuf."""
    try:
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(processor.serialized_model_proto())
        return proto
    except Exception:  # protobuf missing: SentencePiece's defaults
        return None


def _hf_adds_bos(model_dir: Path, tj: dict[str, Any] | None = None) -> bool:
    """Whether the HF tokenizer prepends BOS: its post-processor decides, then tokenizer_config, then the
    SentencePiece tradition (yes). llama.cpp must do the same or every prompt is shifted by one token."""
    tj_path, cfg_path = model_dir / "tokenizer.json", model_dir / "tokenizer_config.json"
    if tj is None and tj_path.is_file():
        tj = _load_json(tj_path)
    if tj is not None:
        post = tj.get("post_processor") or {}
        for proc in post.get("processors", [post]):
            if proc.get("type") == "TemplateProcessing":
                single = proc.get("single") or []
                return bool(single) and "SpecialToken" in single[0]
    if cfg_path.is_file() and "add_bos_token" in (cfg := _load_json(cfg_path)):
        return bool(cfg["add_bos_token"])
    return True


def _spm_json_vocab(model_dir: Path, n_vocab: int, tj: dict[str, Any]) -> VocabData:
    cfg_path = model_dir / "tokenizer_config.json"
    unk = _load_json(cfg_path).get("unk_token") if cfg_path.is_file() else None
    tokens, scores, types = spm_vocab_from_json(tj, n_vocab, model_dir,
                                                unk_token=unk if isinstance(unk, str) else None)
    data = VocabData(model="llama", pre="default", tokens=tokens, scores=scores, types=types)
    _set_space_prefix(tj, data, default=True)
    return data


def _set_space_prefix(tj: dict[str, Any] | None, data: VocabData, default: bool) -> None:
    """llama.cpp's add_space_prefix from where transformers puts '▁' (vocab_spm_json.prepend_scheme).

    llama.cpp puts it in front of every text segment or none. transformers' "first" puts it only at the
    very start, so none is written: text after a special token tokenizes exactly as in training, and a
    chat template whose prompts open with plain text is served with a leading space (space_prefix.py).
    """
    scheme = prepend_scheme(tj)
    data.add_space_prefix = default if scheme is None else scheme == "always"
    if scheme == "first":
        log.warning("transformers puts '\u2581' only at the start of a text (prepend_scheme=first); llama.cpp can "
                    "only add it to every text segment or none, so none: chat prompts are served as trained "
                    "(a leading space in the GGUF's chat template stands for that '\u2581'), but a raw "
                    "completion prompt of plain text needs a leading space to tokenize as in transformers")


def load_vocab(model_dir: Path, n_vocab: int, tokenizer_json: dict[str, Any] | None = None) -> VocabData:
    """Tokens, scores and types padded to the model's embedding rows (``n_vocab``); pass the parsed
    tokenizer.json when the caller has it (it is read once per export)."""
    model_dir = Path(model_dir)
    tj = tokenizer_json if tokenizer_json is not None else read_tokenizer_json(model_dir)
    kind = tokenizer_kind(model_dir, tj)
    if kind == "bpe":
        return _bpe_vocab(model_dir, n_vocab, tj)
    return _spm_json_vocab(model_dir, n_vocab, tj) if kind == "spm-json" else _spm_vocab(model_dir, n_vocab, tj)


def end_of_turn_id(model_dir: Path, data: VocabData) -> int | None:
    """The token the chat template ends an assistant turn with (for tokenizer.ggml.eot_token_id)."""
    gen = Path(model_dir) / "generation_config.json"
    eos_ids: list[int] = []
    if gen.is_file():
        value = _load_json(gen).get("eos_token_id")
        eos_ids = value if isinstance(value, list) else [value] if value is not None else []
    if data.named_ids is not None:  # tokens already packed for GGUF (vocab_cache): their ids were kept
        index = data.named_ids
    else:
        present = set(END_OF_TURN).intersection(data.tokens)  # one C-level pass over 151k tokens, one scan each
        index = {name: data.tokens.index(name) for name in END_OF_TURN if name in present}
    for name in END_OF_TURN:
        if name in index and (not eos_ids or index[name] in eos_ids):
            return index[name]
    return None


def write_vocab(writer, model_dir: Path, n_vocab: int, *, add_bos: bool | None = None,
                tokenizer_json: dict[str, Any] | None = None, packed_merges: Any = None,
                vocab: VocabData | None = None) -> VocabData:
    """Write every tokenizer key: tokens, types, scores, merges, special ids, add_bos, chat template.

    ``add_bos``: the runtime-adds-BOS flag decided by the caller (core/export/train_bos.py: False when the
    training template writes no BOS); None keeps the tokenizer's own setting. ``tokenizer_json``: the
    folder's tokenizer.json when the caller already parsed it (read here otherwise); ``packed_merges``: its
    merges from :func:`~ftwiz.core.export.tokenizer_split.read_tokenizer_json_split` (needs a BulkGGUFWriter). ``vocab``: the vocabulary already
    loaded (:mod:`ftwiz.core.export.vocab_cache`, arrays packed; needs a BulkGGUFWriter)."""
    import gguf

    tj = tokenizer_json if tokenizer_json is not None else read_tokenizer_json(model_dir)
    data = vocab if vocab is not None else load_vocab(model_dir, n_vocab, tj)
    writer.add_tokenizer_model(data.model)
    if data.pre:
        writer.add_tokenizer_pre(data.pre)
    writer.add_token_list(data.tokens)
    writer.add_token_types(data.types)
    if data.scores:
        writer.add_token_scores(data.scores)
    if data.add_space_prefix is not None:
        writer.add_add_space_prefix(data.add_space_prefix)
    gguf_log = logging.getLogger("gguf.vocab")
    level = gguf_log.level
    gguf_log.setLevel(logging.ERROR)  # it warns about Llama-3's pair template, which GGUF has no use for
    from ftwiz.core.export.vocab_slow import special_vocab_dir

    try:  # a tokenizer.json built from vocab.json + merges.txt is shown to gguf-py in a temporary folder
        with special_vocab_dir(model_dir, tj) as special_dir, parsed_once(special_dir / "tokenizer.json", tj):
            special = gguf.SpecialVocab(special_dir, load_merges=False, n_vocab=n_vocab)
    finally:
        gguf_log.setLevel(level)
    if data.model == "gpt2":  # merges from the tokenizer.json parsed above, not a second parse by gguf-py
        if vocab is None or not len(data.merges):
            data.merges = packed_merges if packed_merges is not None else bpe_merges(tj or {})
        special.merges = data.merges
        if not data.merges:
            raise FtwizError("byte-level BPE tokenizer.json has no merges",
                             where=Location(file=model_dir / "tokenizer.json", field="model.merges"),
                             fix="restore tokenizer.json from the base model")
    if "bos" not in special.special_token_ids and data.model == "gpt2":
        # llama.cpp's default BOS id is 11 for BPE: always write one (eos doubles as bos when absent)
        eos = special.special_token_ids.get("eos")
        if eos is not None:
            special.special_token_ids["bos"] = eos
            special.add_special_token.setdefault("bos", False)
    if data.model == "llama":
        special.add_special_token.setdefault("bos", _hf_adds_bos(model_dir, tj))
    if add_bos is not None:
        special.add_special_token["bos"] = add_bos
    if special.add_special_token.get("eos"):  # only when transformers appends it too (eos_flag.py)
        from ftwiz.core.export.eos_flag import hf_appends_eos

        special.add_special_token["eos"] = hf_appends_eos(model_dir, tj)
    from ftwiz.core.export.bos_less import served_without_bos  # bos_token renders '' as in training
    from ftwiz.core.export.template_files import transformers_chat_template  # chat_template.jinja wins

    special.chat_template = transformers_chat_template(model_dir, special.chat_template)
    special.chat_template = served_without_bos(special.chat_template, model_dir)
    if data.add_space_prefix is False and prepend_scheme(tj) == "first":  # the start-of-text '▁' as a space
        from ftwiz.core.export.space_prefix import served_chat_template

        special.chat_template = served_chat_template(special.chat_template, tj or {}, model_dir)
    if special.chat_template is not None:
        from ftwiz.core.export.template_syntax import check_chat_template

        check_chat_template(special.chat_template, model_dir)
    special.add_to_gguf(writer, quiet=True)
    if special.chat_template is None:
        log.warning("%s has no chat template; the GGUF will fall back to llama.cpp's default", model_dir)
    eot = end_of_turn_id(model_dir, data)
    if eot is not None:
        writer.add_eot_token_id(eot)
    return data
