"""Render a chat template to text exactly as transformers does (the one renderer outside data masks).

Training renders with transformers' compiled Jinja template (``core/data/template``); evaluation, the
thinking check of verify, the Ollama TEMPLATE derivation and its probes (``core/deploy``) and the fidelity
tests render through this function, which uses the very same compiled template (sandboxed,
``trim_blocks``/``lstrip_blocks``, ``raise_exception``, ``strftime_now``), so there is no second Jinja
environment whose output could drift from training's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ftwiz.core.errors import FtwizError

Messages = Sequence[Mapping[str, Any]]


class TemplateRaised(FtwizError):
    """The template itself refused the messages (its ``raise_exception``, e.g. 'System role not supported')."""


def special_tokens_of(tokenizer: Any) -> dict[str, str]:
    """The special-token texts a template may read (``bos_token``, ``eos_token``, ...)."""
    tokens = dict(getattr(tokenizer, "special_tokens_map", {}) or {})
    return {k: v for k, v in tokens.items() if isinstance(v, str)}


def render_chat(template: str, messages: Messages, *, add_generation_prompt: bool,
                special_tokens: Mapping[str, str] | None = None, bos_token: str | None = None,
                eos_token: str | None = None, enable_thinking: bool | None = None,
                now: datetime | None = None, tools: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The prompt text ``template`` gives ``messages``.

    ``special_tokens`` is a tokenizer's special-token map; ``bos_token``/``eos_token`` override it (a GGUF
    gives only those two). ``enable_thinking`` None leaves the variable undefined (the template's default);
    ``now`` pins the date ``strftime_now`` writes; ``tools`` are the record's tool definitions
    (``apply_chat_template(tools=...)``). Raises TemplateRaised (an FtwizError) when the template
    refuses the messages with ``raise_exception``, FtwizError when it does not parse ("does not parse as
    Jinja") or fails otherwise.
    """
    import jinja2
    from transformers.utils.chat_template_utils import _compile_jinja_template

    variables: dict[str, Any] = dict(special_tokens or {})
    if bos_token is not None:
        variables["bos_token"] = bos_token
    if eos_token is not None:
        variables["eos_token"] = eos_token
    if enable_thinking is not None:
        variables["enable_thinking"] = enable_thinking
    if now is not None:  # a render variable shadows the environment's global of the same name
        variables["strftime_now"] = now.strftime
    try:
        compiled = _compile_jinja_template(template)
    except jinja2.TemplateError as exc:
        raise FtwizError(f"the chat template does not parse as Jinja: {exc}", where="chat_template",
                         fix="fix the template's Jinja (chat_template in tokenizer_config.json, or the recipe's "
                             "template), then try again") from None
    try:
        # None-valued keys dropped, as apply_chat_template does (``content: null`` beside tool calls)
        plain = [{k: v for k, v in m.items() if v is not None} for m in messages]
        return compiled.render(messages=plain, tools=[dict(t) for t in tools] if tools else None, documents=None,
                               add_generation_prompt=add_generation_prompt, **variables)
    except jinja2.TemplateError as exc:
        # transformers' raise_exception raises a bare TemplateError; an undefined name is a subclass
        error = TemplateRaised if type(exc) is jinja2.TemplateError else FtwizError
        raise error(f"the chat template refused the messages: {exc}", where="chat_template",
                    fix="check the roles (a first system message, then user/assistant turns), or pick "
                        "another template") from None
