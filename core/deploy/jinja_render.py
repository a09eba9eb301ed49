"""A model's Jinja chat template rendered exactly as ``transformers`` renders it.

Why: the Jinja rendering is the reference every Ollama TEMPLATE is checked against, so it must match what
the model saw in training (same environment flags, filters and globals), without importing transformers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from ftwiz.core.errors import FtwizError

Messages = Sequence[Mapping[str, str]]  # role/content (an assistant turn may add 'thinking')


class TemplateRaised(Exception):
    """The chat template called raise_exception (e.g. 'System role not supported')."""


def _raise(message: str) -> None:
    raise TemplateRaised(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _generation_tags() -> Any:
    """``{% generation %}...{% endgeneration %}`` (HF's assistant-mask markers) render their body unchanged."""
    from jinja2.ext import Extension

    class GenerationTags(Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    return GenerationTags


@lru_cache(maxsize=32)
def _compile(chat_template: str) -> Any:
    """Compile like transformers does: sandboxed, trim_blocks + lstrip_blocks, loop controls, generation tags."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols, _generation_tags()])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(chat_template)
    except jinja2.TemplateError as exc:
        raise FtwizError(f"the model's chat template does not parse as Jinja: {exc}",
                         where="tokenizer.chat_template",
                         fix="fix chat_template in tokenizer_config.json and export again") from None


def render_jinja(chat_template: str, messages: Messages, *, bos_token: str | None = None,
                 eos_token: str | None = None, add_generation_prompt: bool = True,
                 enable_thinking: bool | None = None, now: datetime | None = None) -> str:
    """The prompt text the model was trained on, rendered from its Jinja chat template.

    ``enable_thinking`` is passed to the template only when set (None: the template's own default, as
    when transformers is called without it); ``now`` pins what ``strftime_now`` returns.
    """
    extra: dict[str, Any] = {}
    if enable_thinking is not None:
        extra["enable_thinking"] = enable_thinking
    if now is not None:
        extra["strftime_now"] = now.strftime
    return _compile(chat_template).render(
        messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
        bos_token=bos_token or "", eos_token=eos_token or "", tools=None, documents=None, **extra,
    )
