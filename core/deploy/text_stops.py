"""End-of-turn markers that are plain text in the vocabulary: runtimes must stop on the text.

A template whose answers end with a special-looking marker that the tokenizer does not have as a token
(``template: chatml`` on a Llama/TinyLlama/Mistral base: ``<|im_end|>`` is seven ordinary pieces there)
trains the model to end every answer by writing that text, never an end-of-sequence token. Stopping on
control tokens only (EOS, EOT) then lets the answer run on into a made-up next turn
(``<|im_end|>\\n<|im_start|>user ...``). llama.cpp's ``stop`` strings and Ollama's ``PARAMETER stop`` match
generated text and cut it off, so the marker itself never reaches the user.
"""

from __future__ import annotations

from ftwiz.core.deploy.stops import template_end_strings
from ftwiz.core.gguf_info import GGUFInfo


def text_end_markers(info: GGUFInfo) -> list[str]:
    """The special-looking text the GGUF's chat template writes right after an assistant answer that is not
    a control token of the GGUF (so no token id can stop on it); [] for templates whose turns end with one."""
    if not info.chat_template:
        return []
    ends = template_end_strings(info.chat_template, bos_token=info.bos_token, eos_token=info.eos_token,
                                family_markers=False)
    return [t for t in ends if t != info.eos_token and not info.is_control(t)]
