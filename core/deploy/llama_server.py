"""``python -m ftwiz.core.deploy.llama_server ARGS``: llama-cpp-python's OpenAI server, same options, with one fix.

A request that names no ``model`` is answered by the default model (``--model_alias``), but llama-cpp-python
then reports ``self.model_path`` as the response's ``model``: clients saw the GGUF's file path where
``/v1/models`` lists the alias. The wrapper fills the request's missing ``model`` with the alias before the
server sees it, so every answer names the model as ``/v1/models`` does (the run or the file's stem).
"""

from __future__ import annotations

import json
from typing import Any

FILLED_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


class DefaultModel:
    """ASGI middleware: a JSON POST to a completion endpoint without ``model`` gets ``model: alias``; a chat
    completion also gets ``stops`` added to its ``stop`` (an end of turn the vocabulary has only as text,
    core/deploy/text_stops.py: no token stops there, and llama-cpp-python's server has no default stops)."""

    def __init__(self, app: Any, alias: str, stops: tuple[str, ...] = ()) -> None:
        self.app, self.alias, self.stops = app, alias, tuple(stops)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or scope.get("path") not in FILLED_PATHS:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:  # the whole body: requests are small JSON documents
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the server see that
                await self.app(scope, _returning(message), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        body = self.filled(body, chat=scope.get("path") == "/v1/chat/completions")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:  # later calls wait for the client's disconnect, as the server expects
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def filled(self, body: bytes, chat: bool = False) -> bytes:
        """``body`` with ``"model": alias`` when it is a JSON object whose ``model`` is missing or empty, and
        (``chat``) its ``stop`` extended by ``stops``; anything else unchanged (the server reports its own
        validation error)."""
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return body
        if not isinstance(data, dict):
            return body
        added: dict[str, Any] = {} if data.get("model") or not self.alias else {"model": self.alias}
        if chat and self.stops:
            stop = data.get("stop")
            given = [stop] if isinstance(stop, str) else list(stop) if isinstance(stop, list) else []
            if any(s not in given for s in self.stops):
                added["stop"] = given + [s for s in self.stops if s not in given]
        return json.dumps({**data, **added}).encode("utf-8") if added else body


def _returning(message: dict[str, Any]) -> Any:
    """A ``receive`` that answers ``message`` every time."""
    async def receive() -> dict[str, Any]:
        return message

    return receive


def _text_stops(gguf: str) -> tuple[str, ...]:
    """The GGUF's end-of-turn markers that only exist as text (core/deploy/text_stops.py); () if unreadable."""
    from ftwiz.core.deploy.text_stops import text_end_markers
    from ftwiz.core.gguf_info import read_gguf_info

    try:
        return tuple(text_end_markers(read_gguf_info(gguf)))
    except Exception:  # noqa: BLE001 - the server itself reports a GGUF it cannot load
        return ()


def main() -> None:
    """Run llama-cpp-python's server entry point with the middleware installed on the app it creates."""
    import llama_cpp.server.__main__ as entry

    create_app = entry.create_app

    def create_app_with_default_model(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        models = kwargs.get("model_settings") or []
        alias = (models[0].model_alias or models[0].model) if models else None
        stops = _text_stops(models[0].model) if models else ()
        if alias or stops:
            app.add_middleware(DefaultModel, alias=alias or "", stops=stops)
        return app

    entry.create_app = create_app_with_default_model
    entry.main()


if __name__ == "__main__":
    main()
