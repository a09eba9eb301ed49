"""Tiny offline models: tokenizers trained on shipped text and small Llama/Qwen2/Qwen3 models.

``build_tiny_model`` serves tests; ``ensure_demo_base_model`` builds (once, then cached) the embedded
demo's base model, briefly pre-trained so fine-tuning visibly changes its answers.
"""

from ftwiz.core.tiny.demo import DEMO_SPEC, ensure_demo_base_model
from ftwiz.core.tiny.model import TinySpec, build_tiny_model
from ftwiz.core.tiny.tokenizer import FAMILIES, build_tokenizer, corpus_text

__all__ = [
    "DEMO_SPEC", "FAMILIES", "TinySpec", "build_tiny_model", "build_tokenizer", "corpus_text",
    "ensure_demo_base_model",
]
