"""Whether Ollama's merging of consecutive same-role messages changes this model's prompt.

Ollama joins consecutive messages of one role into one message (``collate`` in its template package, with a
blank line between the contents) before the TEMPLATE runs. Some chat templates do the same (Mistral v0.3),
and then the Modelfile is faithful; others (ChatML: Qwen) keep every message as its own turn, so a
conversation with two user messages in a row reaches the model differently from how training rendered it.
No TEMPLATE can undo the merge, so the Modelfile says so and points to llama.cpp's server, which renders the
GGUF's own Jinja template on the messages as sent.
"""

from __future__ import annotations

from ftwiz.core.chat_templates.render import TemplateRaised
from ftwiz.core.deploy.gotemplate import GoTemplateError
from ftwiz.core.deploy.probes import Renderer, ollama_prompt

# Two user messages in a row, first and after an answer: the shapes clients send (a follow-up before the answer)
_CONSECUTIVE = (
    [{"role": "user", "content": "Here is my text."}, {"role": "user", "content": "Summarise it."}],
    [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi."},
     {"role": "user", "content": "Here is my text."}, {"role": "user", "content": "Summarise it."}],
)


def consecutive_turns_note(ollama_template: str, renderer: Renderer) -> str | None:
    """A Modelfile note when Ollama would prompt consecutive same-role messages differently than training;
    None when both render them alike, or when the model's template refuses such conversations itself."""
    for messages in _CONSECUTIVE:
        try:
            expected = renderer.expected(messages)
        except TemplateRaised:
            return None  # the template itself rejects them: training data never had them
        try:
            served = ollama_prompt(ollama_template, messages)
        except GoTemplateError:
            served = None
        if served != expected:
            return ("Ollama merges consecutive messages of one role into one (a blank line between them) before "
                    "this TEMPLATE runs, while the model's template keeps each as its own turn: a conversation "
                    "with two user messages in a row is prompted differently than in training. `ftwiz serve` "
                    "(llama.cpp) renders the GGUF's own template on the messages as sent")
    return None
