"""Chatting with a model registered in Ollama (``ftwiz chat NAME``, ``--compare NAME``): its ``/api/chat``, with the
TEMPLATE ``ftwiz register`` checked. The GGUF backend and the session around both are :mod:`ftwiz.core.deploy.chat`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ftwiz.core.errors import FtwizError
from ftwiz.core.paths import runs_dir


class OllamaBackend:
    """A model registered with Ollama, through ``/api/chat``."""

    def __init__(self, name: str, *, host: str | None = None, num_ctx: int | None = None) -> None:
        """``num_ctx``: the context Ollama opens the model with (tokens; ``--n-ctx``), else its Modelfile's."""
        import ollama
        from ftwiz.core.deploy.ollama_register import ollama_host

        self.host = ollama_host(host)
        self.client = ollama.Client(host=self.host, timeout=600)
        self.label = f"ollama:{name}"
        self.name = name
        self.last_finish_reason: str | None = None
        self._ollama = ollama
        # set for a comparison's base asked with no system prompt: Ollama would add the Modelfile SYSTEM
        self.no_default_system = False
        self._modelfile: tuple[str, str] | None = None  # its SYSTEM and TEMPLATE, asked once
        self.num_ctx = num_ctx
        if num_ctx is not None:  # said under 'chatting with', as llama.cpp's window is
            from ftwiz.core.deploy.context_size import ContextChoice

            self.context = ContextChoice(num_ctx, "--n-ctx, sent to Ollama as num_ctx")

    def stream(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int,
               seed: int | None) -> Iterator[str]:
        import httpx
        from ftwiz.core.deploy.ollama_register import _not_reachable

        self.last_finish_reason = None
        options: dict[str, Any] = {"temperature": temperature, "num_predict": max_tokens}
        if seed is not None:
            options["seed"] = seed
        if self.num_ctx is not None:  # per request: Ollama reloads the model with this window
            options["num_ctx"] = self.num_ctx
        raw = None
        if self.no_default_system:  # the Modelfile's SYSTEM left out, as the other side has none
            from ftwiz.core.deploy.ollama_no_system import backend_request

            messages, raw = backend_request(self, messages)
        try:
            if raw is not None:  # the prompt Ollama renders without a SYSTEM, as its tokens (see ollama_no_system)
                for got in self.client.generate(model=self.name, prompt=raw, raw=True, options=options, stream=True):
                    if got.response:
                        yield got.response
                    if got.done:
                        self.last_finish_reason = got.done_reason
                return
            for part in self.client.chat(model=self.name, messages=messages, options=options, stream=True):
                if part.message and part.message.content:
                    yield part.message.content
                if part.done:
                    self.last_finish_reason = part.done_reason
        except (ConnectionError, httpx.ConnectError):
            raise _not_reachable(self.host) from None
        except self._ollama.ResponseError as exc:
            fix = ("register it first: `ftwiz register GGUF --name NAME`" if exc.status_code == 404
                   else "see the Ollama server log")
            raise FtwizError(f"Ollama could not chat with '{self.name}': {exc.error}", fix=fix) from None

    def close(self) -> None:
        pass


def refuse_num_ctx_beyond_window(backend: OllamaBackend) -> None:
    """FtwizError when the ``--n-ctx`` given (``backend.num_ctx``, tokens) is more than the model's context_length
    as Ollama reports it (``/api/show``'s ``model_info``), as register, serve and a GGUF's chat refuse it: Ollama
    caps num_ctx there without a word, so "context N tokens" would be a context the chat never has. A model
    Ollama does not know, or one whose info records no context_length, is left to the chat to report."""
    if backend.num_ctx is None:
        return
    import httpx

    try:  # raw: Ollama omits an empty model_info, which the ollama client's ShowResponse then refuses
        response = httpx.post(f"{backend.host}/api/show", json={"model": backend.name}, timeout=30)
        info = response.json().get("model_info") or {} if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):  # not reachable or not registered: the first answer says so, with its fix
        return
    arch = info.get("general.architecture")
    context_length = info.get(f"{arch}.context_length")
    if isinstance(context_length, int) and context_length > 0:
        from ftwiz.core.deploy.context_size import refuse_beyond

        refuse_beyond(backend.num_ctx, context_length, "--n-ctx")


def require_ollama(backend: OllamaBackend) -> None:
    """FtwizError before the first prompt when no Ollama answers: the name was most likely a mistyped run
    (``ftwiz chat my-rnu`` said "Ollama is not installed" only after the user typed a question)."""
    import httpx
    from ftwiz.core.deploy.ollama_register import _not_reachable

    try:
        httpx.get(f"{backend.host}/api/version", timeout=3)
    except httpx.HTTPError:
        error = _not_reachable(backend.host)
        raise FtwizError(f"'{backend.name}' is not a .gguf file or a run in {runs_dir()}, so it would be an Ollama "
                         f"model, but {error.what}", where="MODEL",
                         fix=f"for a run, check its name (the folders in {runs_dir()}); for an Ollama model: "
                             f"{error.fix}") from None
