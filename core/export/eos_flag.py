"""``tokenizer.ggml.add_eos_token``: whether the runtime appends EOS to a prompt, as the training tokenizer does.

gguf-py copies tokenizer_config.json's ``add_eos_token``, but transformers 5 tokenizes with tokenizer.json's
post-processor and ignores that flag when the post-processor has no EOS (TinyLlama with
``add_eos_token: true`` still gives ``[<s>, ...]``). A GGUF saying true makes Ollama and llama.cpp's server
append ``</s>`` after every chat prompt: the model is told the conversation ended before it answers, and
``ftwiz register`` refused the model (its token check saw the extra EOS).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def hf_appends_eos(model_dir: Path, tokenizer_json: dict[str, Any] | None) -> bool:
    """Whether transformers ends a tokenized text with a special token (EOS): the last item of tokenizer.json's
    TemplateProcessing ``single``; without such a post-processor, tokenizer_config.json's ``add_eos_token``."""
    post = (tokenizer_json or {}).get("post_processor") or {}
    for proc in post.get("processors", [post]):
        if proc.get("type") == "TemplateProcessing":
            single = proc.get("single") or []
            return len(single) > 1 and "SpecialToken" in single[-1]
    cfg = Path(model_dir) / "tokenizer_config.json"
    if cfg.is_file():
        return bool(json.loads(cfg.read_text(encoding="utf-8")).get("add_eos_token", False))
    return False
