"""Whether a model's chat template formats tool definitions that its Ollama TEMPLATE cannot.

ftwiz's Ollama TEMPLATE covers the chat turns only (it has no ``.Tools``): Ollama then answers a request
with tools with "does not support tools". When the model's own Jinja template does render tools (Qwen3,
Mistral v0.3), registering quietly loses that ability, so the Modelfile says so and points to
``ftwiz serve``, where llama.cpp applies the GGUF's Jinja template with the request's tools.
"""

from __future__ import annotations

import re

PROBE_TOOL = {"type": "function", "function": {
    "name": "ftwiz_probe_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
_GO_TOOLS = re.compile(r"\.Tools\b")


def renders_tools(chat_template: str | None, *, bos_token: str | None = None, eos_token: str | None = None) -> bool:
    """True when ``chat_template`` writes a tool definition it is given (``apply_chat_template(tools=...)``)
    into the prompt; False for templates without tool support and for ones that fail to render."""
    if not chat_template or "tools" not in chat_template:
        return False
    from transformers.utils.chat_template_utils import _compile_jinja_template

    name = PROBE_TOOL["function"]["name"]
    try:
        text = _compile_jinja_template(chat_template).render(
            messages=[{"role": "user", "content": "Hi"}], tools=[PROBE_TOOL], documents=None,
            add_generation_prompt=True, bos_token=bos_token or "", eos_token=eos_token or "")
    except Exception:  # noqa: BLE001 - a template that cannot render tools does not support them
        return False
    return name in text


def tools_note(chat_template: str | None, ollama_template: str, *, bos_token: str | None = None,
               eos_token: str | None = None) -> str | None:
    """The Modelfile note for a model whose template supports tools that the Ollama TEMPLATE drops; None
    when the TEMPLATE handles ``.Tools`` or the model's template has no tool support."""
    if _GO_TOOLS.search(ollama_template) or not renders_tools(chat_template, bos_token=bos_token,
                                                             eos_token=eos_token):
        return None
    return ("tool calls are not supported through this Modelfile: the model's chat template formats tools but "
            "this TEMPLATE has no .Tools, so Ollama refuses requests with tools ('does not support tools'). "
            "For tool calling serve the GGUF with `ftwiz serve` (llama.cpp applies the GGUF's own chat "
            "template, tools included)")
