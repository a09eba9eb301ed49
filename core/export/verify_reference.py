"""Which tokenizer pipeline ``export --verify`` takes its reference token ids from.

transformers 5 rebuilds the pipeline of a tokenizer whose class it knows (``LlamaTokenizer``: a Metaspace
pre-tokenizer, ``prepend_scheme: "first"``) whatever the folder's tokenizer.json says. A Llama-family folder
taken straight from the hub whose tokenizer.json was written by transformers 4 (TinyLlama-1.1B-Chat-v1.0,
Llama 2, Phi-3) holds another pipeline: a ``Prepend("▁")`` normalizer, so '▁' goes in front of every text
segment, also after ``</s>``. ftwiz's GGUF follows the file (``add_space_prefix`` true), as llama.cpp's own
convert_hf_to_gguf.py does, and llama.cpp then tokenizes as the file's pipeline does; compared with
transformers 5's ids, a correct GGUF would fail verify.

The rule (the simplest that tells the two apart, and the same fields the converter reads):

- the folder belongs to a run (``training`` is its template of record): transformers, always. Training
  tokenized with it, so the GGUF must too; a run's merged folder holds the tokenizer.json transformers 5
  saved, so the two agree anyway;
- otherwise, when the folder has a tokenizer.json whose ``normalizer`` or ``pre_tokenizer`` (where '▁'
  goes and how text is split; what ``vocab_spm_json.prepend_scheme`` reads for the GGUF) differs from
  those of the backend tokenizer transformers built, the reference is the file's own pipeline: a
  ``PreTrainedTokenizerFast`` around ``tokenizers.Tokenizer.from_file`` (special tokens and chat template
  from the folder, so chat rendering and the eos check work as before). Both sides are serialised by the
  tokenizers library, so equal pipelines compare equal field by field;
- otherwise (no tokenizer.json, a slow tokenizer, equal pipelines): transformers.

The report then carries an info check ``tokenizer_reference`` (passed None) naming the pipeline used.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from ftwiz.core.export.verify_report import Check

PIPELINE_FIELDS = ("normalizer", "pre_tokenizer")
# the top-level "model" key (a vocabulary entry is "model": <id>; a string's quotes inside JSON are escaped)
_MODEL_KEY = re.compile(rb'"model"\s*:\s*\{')
_NO_MODEL = {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"}  # to load a pipeline alone


def _describe(pipeline: dict[str, Any]) -> str:
    """A short text for a pipeline's '▁' handling, e.g. ``Prepend('▁') normalizer`` or ``Metaspace (first)``."""
    from ftwiz.core.export.vocab_spm_json import prepend_scheme

    scheme = prepend_scheme(pipeline)
    kinds = []
    for key, members in (("normalizer", "normalizers"), ("pre_tokenizer", "pretokenizers")):
        item = pipeline.get(key) or {}
        parts = list(item.get(members) or []) if item.get("type") == "Sequence" else [item]
        kinds += [p["type"] for p in parts if p.get("type")]
    return f"{' + '.join(kinds) or 'no normalizer/pre-tokenizer'} ('\u2581' {scheme or 'never'})"


def _sections_of(tokenizer) -> dict[str, Any]:
    """A ``tokenizers.Tokenizer``'s :data:`PIPELINE_FIELDS` as tokenizers serialises them (None when unset)."""
    parts = {"normalizer": tokenizer.normalizer, "pre_tokenizer": tokenizer.pre_tokenizer}
    return {key: json.loads(part.__getstate__()) if part is not None else None for key, part in parts.items()}


def file_pipeline(path: Path) -> dict[str, Any]:
    """tokenizer.json's :data:`PIPELINE_FIELDS`, serialised as the tokenizers library writes them (so that a
    file written by an older version, without fields added since, compares equal to the same pipeline).

    Without parsing the vocabulary (a 151k-token file takes ~0.5-1.5 s): tokenizers writes ``"model"`` last,
    so the text before it, closed, holds the pipeline; a file laid out otherwise is parsed whole. Raises
    ValueError (json's) for a file that is not JSON, as transformers would have already.
    """
    from tokenizers import Tokenizer

    data = path.read_bytes()
    match = _MODEL_KEY.search(data)
    head: Any = None
    if match:
        with contextlib.suppress(ValueError):
            head = json.loads(data[:match.start()] + b'"model": null}')
    if not isinstance(head, dict) or any(key not in head for key in PIPELINE_FIELDS):
        head = json.loads(data)
    minimal = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "post_processor": None,
               "decoder": None, "model": _NO_MODEL, **{key: head.get(key) for key in PIPELINE_FIELDS}}
    return _sections_of(Tokenizer.from_str(json.dumps(minimal)))


def differing_fields(file_sections: dict[str, Any], built_sections: dict[str, Any]) -> list[str]:
    """The :data:`PIPELINE_FIELDS` in which two pipelines (:func:`file_pipeline`'s form) differ."""
    return [key for key in PIPELINE_FIELDS if file_sections.get(key) != built_sections.get(key)]


def reference_tokenizer(hf_model_dir: Path, tokenizer, training=None) -> tuple[Any, Check | None]:
    """(the tokenizer whose ids are the verify's reference, the info check naming it or None).

    ``tokenizer`` is what ``transformers.AutoTokenizer.from_pretrained(hf_model_dir)`` returned and is
    returned unchanged unless the folder's own tokenizer.json pipeline differs from it (module docstring).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    path = Path(hf_model_dir) / "tokenizer.json"
    if training is not None or backend is None or not path.is_file():
        return tokenizer, None
    in_file, built = file_pipeline(path), _sections_of(backend)
    fields = differing_fields(in_file, built)
    if not fields:
        return tokenizer, None
    import transformers
    from tokenizers import Tokenizer

    reference = transformers.PreTrainedTokenizerFast.from_pretrained(
        hf_model_dir, tokenizer_object=Tokenizer.from_file(str(path)))
    detail = (f"reference ids from the folder's own tokenizer.json pipeline ({_describe(in_file)}, tokenizers "
              f"library), which the GGUF follows as llama.cpp's convert_hf_to_gguf.py does; transformers "
              f"{transformers.__version__} rebuilds {type(tokenizer).__name__}'s pipeline ({_describe(built)}; "
              f"{' and '.join(fields)} differ), whose ids differ where '\u2581' goes (e.g. after </s>)")
    return reference, Check(name="tokenizer_reference", passed=None, detail=detail)
