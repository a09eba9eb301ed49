"""Chat templates of record: named templates, the run's template and its hash, and the one renderer.

- ``named``: LLaMA-Factory's template names (``alpaca``, ``chatml``, ``qwen3``, ``llama3``, ...) as Jinja;
- ``record``: which template a run trains with (model's own, named, file or Jinja text), ``enable_thinking``
  as the template's default, and writing it into tokenizer folders and run cards;
- ``render``: text rendering identical to transformers' ``apply_chat_template`` (the one renderer: training's
  masks, eval, verify and the Ollama TEMPLATE checks all render through it).

Masks over rendered text live in ``ftwiz.core.data.template``; Jinja -> Ollama TEMPLATE in
``ftwiz.core.deploy.templates``.
"""

from ftwiz.core.chat_templates.named import NAMED_SPECS, NAMED_TEMPLATES, TEMPLATE_NAMES, build_jinja
from ftwiz.core.chat_templates.record import (
    TemplateOfRecord,
    adopt_template,
    own_template,
    record_of_model_dir,
    record_of_run,
    resolve_template,
    template_hash,
    with_thinking_default,
    write_template_files,
)
from ftwiz.core.chat_templates.render import Messages, TemplateRaised, render_chat, special_tokens_of

__all__ = [
    "NAMED_SPECS", "NAMED_TEMPLATES", "TEMPLATE_NAMES", "TemplateOfRecord", "build_jinja", "adopt_template",
    "Messages", "TemplateRaised", "own_template", "record_of_model_dir", "record_of_run", "render_chat",
    "resolve_template",
    "special_tokens_of", "template_hash", "with_thinking_default", "write_template_files",
]
