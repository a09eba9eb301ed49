"""Asking an Ollama model with no system prompt at all, when its Modelfile has a SYSTEM of its own.

Ollama's ``/api/chat`` puts the Modelfile SYSTEM in front of a request whose messages do not start with a
system message (server/routes.go). ``ftwiz chat TUNED --compare BASE`` must ask the base as it asks the
fine-tune: with no system prompt when the fine-tune has none, or the two columns answer different questions.

Two ways to get there, checked with Ollama's prompt building as ftwiz's Go-template interpreter models it
(:func:`ftwiz.core.deploy.probes.ollama_prompt`):

- an empty system message in front: Ollama then adds no SYSTEM, and ``.System`` is "". Templates that write a
  system block only ``{{ if .System }}`` (most of Ollama's library) render exactly what they render with no
  SYSTEM; this keeps ``/api/chat`` and its parsers (thinking, tool calls).
- templates that render the empty system message as a turn of its own (those ``ftwiz register`` writes, as the
  models' Jinja templates do) would still differ, so the prompt they render with no SYSTEM is sent through
  ``/api/generate`` with ``raw``: the same tokens Ollama would build for a model without a SYSTEM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EMPTY_SYSTEM = {"role": "system", "content": ""}


@dataclass(frozen=True)
class NoSystemRequest:
    """How to send ``messages`` so the model sees no system prompt: ``/api/chat`` with ``messages``, or, when
    ``raw_prompt`` is set, ``/api/generate`` with that prompt and ``raw: true``."""

    messages: list[dict[str, str]]
    raw_prompt: str | None = None


def modelfile_system_and_template(host: str, name: str) -> tuple[str, str]:
    """The model's Modelfile SYSTEM and TEMPLATE from ``/api/show`` ("" each when it has none or Ollama does not
    say: the ollama client's ShowResponse drops ``system``, so this asks over HTTP)."""
    import httpx

    try:
        response = httpx.post(f"{host}/api/show", json={"model": name}, timeout=30)
        data: dict[str, Any] = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        data = {}  # /api/chat then says what is wrong (not found, not reachable) as it always did
    return str(data.get("system") or ""), str(data.get("template") or "")


def without_system(messages: list[dict[str, str]], system: str, template: str) -> NoSystemRequest:
    """The request that asks ``messages`` (no system message first) of a model whose Modelfile has ``system``
    and ``template``, with no system prompt (see the module docstring)."""
    if not system or (messages and messages[0].get("role") == "system"):
        return NoSystemRequest(list(messages))  # Ollama adds nothing: asked as given
    from ftwiz.core.deploy.gotemplate import GoTemplateError
    from ftwiz.core.deploy.probes import ollama_prompt

    flagged = [EMPTY_SYSTEM, *messages]
    try:
        wanted = ollama_prompt(template, messages)  # what the model renders with no Modelfile SYSTEM
        if ollama_prompt(template, flagged) == wanted:
            return NoSystemRequest(flagged)
    except (GoTemplateError, KeyError, TypeError, ValueError):
        return NoSystemRequest(flagged)  # a template the interpreter cannot follow: still no SYSTEM added
    return NoSystemRequest(list(messages), raw_prompt=wanted)


def backend_request(backend: Any, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str | None]:
    """(messages, raw prompt or None) for an ``OllamaBackend`` asked with no system prompt; its model's SYSTEM
    and TEMPLATE are asked once and kept on the backend (``_modelfile``)."""
    if backend._modelfile is None:
        backend._modelfile = modelfile_system_and_template(backend.host, backend.name)
    request = without_system(messages, *backend._modelfile)
    return request.messages, request.raw_prompt
