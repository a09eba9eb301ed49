"""The served model answers with its alias when a request names no model (not the GGUF's file path)."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient
from ftwiz.core.deploy.llama_server import DefaultModel


def _echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        return {"model": body.get("model") or "/models/run-Q8_0.gguf"}  # what llama-cpp-python does with None

    @app.post("/v1/other")
    async def other(body: dict) -> dict:
        return body

    app.add_middleware(DefaultModel, alias="my-run")
    return app


def test_a_request_without_model_is_answered_with_the_alias() -> None:
    client = TestClient(_echo_app())
    assert client.post("/v1/chat/completions", json={"messages": []}).json()["model"] == "my-run"
    assert client.post("/v1/chat/completions", json={"model": "", "messages": []}).json()["model"] == "my-run"
    assert client.post("/v1/chat/completions", json={"model": "other", "messages": []}).json()["model"] == "other"
    assert client.post("/v1/other", json={"messages": []}).json() == {"messages": []}  # other endpoints untouched


def test_bodies_that_are_not_json_objects_pass_unchanged() -> None:
    middleware = DefaultModel(None, "my-run")
    assert middleware.filled(b"not json") == b"not json"
    assert middleware.filled(b"[1]") == b"[1]"
    assert json.loads(middleware.filled(b'{"messages": []}')) == {"messages": [], "model": "my-run"}
