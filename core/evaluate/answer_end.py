"""Where a generated answer ends when the template closes turns with text the vocabulary has no token for.

``template: chatml`` on a Llama/TinyLlama/Mistral base ends every trained answer with ``<|im_end|>``, which
that vocabulary spells as seven ordinary pieces: the model learns to write the text, never an
end-of-sequence token, so generation stopping on token ids alone runs on into a made-up next turn
(``<|im_end|>\\n<|im_start|>user ...``) and ROUGE/BLEU score that run-on against the reference. Chat, serve
and the Modelfile stop on the same text (:mod:`ftwiz.core.deploy.text_stops`); eval cuts the answer there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_stops(renderer: Any, engine: Any) -> list[str]:
    """The special-looking text ``renderer``'s template writes right after an answer (its end of turn) that is
    no single token of ``engine``'s vocabulary, so no stop id can end generation there; [] when every end of
    turn is a token (the usual case)."""
    from ftwiz.core.deploy.stops import template_end_strings

    tokenizer = getattr(renderer, "tokenizer", None)  # when set, its special tokens are what the template reads
    bos = getattr(renderer, "bos_token", None) or getattr(tokenizer, "bos_token", None)
    eos = getattr(renderer, "eos_token", None) or getattr(tokenizer, "eos_token", None)
    ends = template_end_strings(getattr(renderer, "template", None), bos_token=bos, eos_token=eos, family_markers=False)
    return [text for text in ends if engine.token_id(text) is None]


def cut_at_text_stop(answer: str, stops: Sequence[str]) -> str:
    """``answer`` up to the first of ``stops`` it contains (the stop itself not kept), else unchanged."""
    ends = [i for i in (answer.find(stop) for stop in stops if stop) if i >= 0]
    return answer[:min(ends)] if ends else answer
