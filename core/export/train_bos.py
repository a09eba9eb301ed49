"""Whether the runtime should add BOS: exactly when training's sequences started with one.

Training renders each conversation with the run's chat template and tokenizes it without adding special
tokens (``core/data/template.py``), as ``apply_chat_template(tokenize=True)`` does: the template alone is
responsible for BOS. A template that writes no BOS (TinyLlama's zephyr template, ``template: alpaca`` on a
Llama tokenizer) therefore trains sequences without one, while the tokenizer's own ``add_bos_token`` (true
for SentencePiece models) would make llama.cpp and Ollama put one in front of every served prompt. For a
model exported from an ftwiz run, the GGUF's ``tokenizer.ggml.add_bos_token`` is set to false in that case,
so the served tokens are the trained tokens. Models that are not from a run keep their tokenizer's setting
(how their authors trained is not known here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROBE = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]


def template_writes_bos(template: str, special_tokens: dict[str, str], *, enable_thinking: bool | None = None) -> bool:
    """True when ``template`` renders a conversation starting with the BOS text (``special_tokens['bos_token']``).

    A template that refuses the probe conversation is taken to write BOS (nothing is changed for it)."""
    from ftwiz.core.chat_templates.render import render_chat
    from ftwiz.core.errors import FtwizError

    bos = special_tokens.get("bos_token")
    if not bos:
        return True
    try:
        text = render_chat(template, PROBE, add_generation_prompt=True, special_tokens=special_tokens,
                           enable_thinking=enable_thinking)
    except FtwizError:
        return True
    return text.startswith(bos)


def _special_tokens(model_dir: Path) -> dict[str, str]:
    """The special-token texts of ``model_dir``'s tokenizer (``bos_token``, ``eos_token``, ...)."""
    from ftwiz.core.chat_templates.render import special_tokens_of
    from transformers import AutoTokenizer

    return special_tokens_of(AutoTokenizer.from_pretrained(model_dir))


def runtime_adds_bos(model_dir: str | Path) -> bool | None:
    """``False`` when ``model_dir`` belongs to an ftwiz run whose training template writes no BOS (the GGUF
    must then say ``add_bos_token=false``); None to keep the tokenizer's own setting (not a run, no template
    of record, or a template that writes BOS itself)."""
    from ftwiz.core.chat_templates.record import record_of_model_dir

    record: Any = record_of_model_dir(Path(model_dir))
    if record is None or not record.template:
        return None
    writes = template_writes_bos(record.template, _special_tokens(Path(model_dir)),
                                 enable_thinking=record.enable_thinking)
    return None if writes else False
