"""The GGUF's ``general.name``, chosen so llama.cpp tokenizes special tokens as transformers does.

llama.cpp decides one tokenizer behaviour from the model's name, not from the vocabulary: when
``general.name`` (lowercased) contains ``phi-3`` or ``phi3`` it marks every special token except
``<unk>``, ``<s>`` and ``<|endoftext|>`` RSTRIP (whitespace after it is dropped), which is what Phi-3's
``tokenizer.json`` declares (``"rstrip": true`` on ``<|user|>``, ``<|assistant|>``, ``<|end|>``, ``</s>``, ...)
and what transformers does in training. A fine-tune exported from a folder named ``merged`` or after a run
would lose that rule, so ``<|user|>\\nHello`` would be served as different tokens than it was trained on.
The name is therefore made to carry the rule exactly when the tokenizer asks for it, and to not carry it
when the tokenizer does not (a folder called ``phi3-distilled-qwen``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RSTRIP_NAME_MARKS = ("phi-3", "phi3")  # llama.cpp's llama-vocab.cpp: _contains_any(model_name, {...})
NEVER_RSTRIP = frozenset({"<unk>", "<s>", "<|endoftext|>"})  # llama.cpp resets RSTRIP on these three


_UNREAD: Any = object()


def _wants_phi3_rstrip(tokenizer_json: Path, parsed: Any = _UNREAD) -> bool | None:
    """True when the tokenizer's special added tokens carry rstrip exactly as llama.cpp's Phi-3 rule sets it,
    False when they do not, None when there is no readable ``tokenizer.json`` (nothing to decide from).
    ``parsed``: the file already parsed by the caller (None: there is none), so 7 MB are not parsed twice."""
    if parsed is _UNREAD:
        try:
            parsed = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(parsed, dict):
        return None
    data = parsed
    added = [t for t in data.get("added_tokens") or () if isinstance(t, dict) and t.get("special")]
    ruled = [t for t in added if t.get("content") not in NEVER_RSTRIP]
    if not ruled or any(t.get("lstrip") for t in ruled):
        return False
    return all(t.get("rstrip") for t in ruled) and not any(
        t.get("rstrip") for t in added if t.get("content") in NEVER_RSTRIP)


def gguf_general_name(model_dir: Path, tokenizer_json: Any = _UNREAD) -> str:
    """``general.name`` for the GGUF of ``model_dir``: the folder's name, with ``-phi3`` appended when the
    tokenizer needs llama.cpp's Phi-3 whitespace rule, or with the rule's marks removed when it must not
    apply. Example: ``merged`` of a Phi-3 fine-tune -> ``merged-phi3``. ``tokenizer_json``: the folder's
    tokenizer.json as the caller parsed it (None when it has none); read from the folder when not given."""
    name = Path(model_dir).name
    wants = _wants_phi3_rstrip(Path(model_dir) / "tokenizer.json", tokenizer_json)
    carries = any(mark in name.lower() for mark in RSTRIP_NAME_MARKS)
    if wants and not carries:
        return f"{name}-phi3"
    if wants is False and carries:
        lowered = name.lower()
        for mark in RSTRIP_NAME_MARKS:
            while mark in lowered:
                at = lowered.index(mark)
                name, lowered = name[:at] + "phi" + name[at + len(mark):], lowered[:at] + "phi" + lowered[at + len(mark):]
        return name
    return name
