"""An in-process server that speaks Ollama's documented REST API, for registration tests.

It implements /api/version, /api/blobs/:digest (HEAD + POST, digest verified), /api/create (streamed
status lines and streamed errors), /api/show, /api/chat, raw /api/generate and /api/delete; the ``fake_ollama`` fixture in
conftest.py starts one per test. Shared by the registration contract tests and the wizard's deploy tests.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOllama:
    """State and knobs of the fake server; ``requests`` records (method, path, json body or None)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.answer = "Hi! I am a tiny model."
        self.done_reason = "stop"
        self.create_error: str | None = None
        self.create_http_error: int | None = None
        self.corrupt_uploads = False
        # the prompt each /api/chat or /api/generate rendered, as Ollama builds it (Modelfile SYSTEM included)
        self.prompts: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def model_info(self, model: dict[str, Any]) -> dict[str, Any]:
        """``/api/show``'s ``model_info`` as Ollama reads it from the model's GGUF: its architecture and
        ``<arch>.context_length`` (when the GGUF records one); empty for a model made without a GGUF blob."""
        import tempfile

        from gguf import GGUFReader

        blobs = [self.blobs[d] for d in model.get("files", {}).values() if d in self.blobs]
        if not blobs:
            return {}
        with tempfile.NamedTemporaryFile(suffix=".gguf") as file:
            file.write(blobs[0])
            file.flush()
            fields = GGUFReader(file.name).fields
            arch = fields["general.architecture"].contents()
            info: dict[str, Any] = {"general.architecture": arch}
            if f"{arch}.context_length" in fields:
                info[f"{arch}.context_length"] = int(fields[f"{arch}.context_length"].contents())
        return {"model_info": info}

    def paths(self, method: str) -> list[str]:
        return [p for m, p, _ in self.requests if m == method]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, code: int, payload: Any = None, *, lines: list[dict[str, Any]] | None = None) -> None:
                body = (b"".join(json.dumps(x).encode() + b"\n" for x in lines) if lines is not None
                        else b"" if payload is None else json.dumps(payload).encode())
                self.send_response(code)
                self.send_header("Content-Type", "application/x-ndjson" if lines is not None else "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self) -> dict[str, Any]:
                raw = self._body()
                data = json.loads(raw or b"{}")
                fake.requests.append((self.command, self.path, data))
                return data

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake.requests.append(("GET", self.path, None))
                if self.path == "/api/version":
                    self._send(200, {"version": "0.6.3-fake"})
                else:
                    self._send(404, {"error": "not found"})

            def do_HEAD(self) -> None:  # noqa: N802
                fake.requests.append(("HEAD", self.path, None))
                digest = self.path.removeprefix("/api/blobs/")
                self._send(200 if digest in fake.blobs else 404)

            def do_POST(self) -> None:  # noqa: N802
                if self.path.startswith("/api/blobs/"):
                    digest = self.path.removeprefix("/api/blobs/")
                    data = self._body()
                    fake.requests.append(("POST", self.path, None))
                    if fake.corrupt_uploads:
                        data = data[:-1]
                    if digest != "sha256:" + hashlib.sha256(data).hexdigest():
                        self._send(400, {"error": "digest mismatch, expected " + digest})
                        return
                    fake.blobs[digest] = data
                    self._send(201)
                    return
                body = self._json()
                if self.path == "/api/create":
                    self._create(body)
                elif self.path == "/api/show":
                    model = fake.models.get(body.get("model", ""))
                    if model:
                        # Ollama's ShowResponse carries the Modelfile SYSTEM too (omitted when empty)
                        self._send(200, {"template": model.get("template", "")}
                                   | ({"system": model["system"]} if model.get("system") else {})
                                   | fake.model_info(model))
                    else:
                        self._send(404, {"error": f"model '{body.get('model')}' not found"})
                elif self.path in ("/api/chat", "/api/generate"):
                    self._chat(body)
                else:
                    self._send(404, {"error": "not found"})

            def do_DELETE(self) -> None:  # noqa: N802
                body = self._json()
                if fake.models.pop(body.get("model", ""), None) is None:
                    self._send(404, {"error": "model not found"})
                else:
                    self._send(200)

            def _create(self, body: dict[str, Any]) -> None:
                if fake.create_http_error:
                    self._send(fake.create_http_error, {"error": "invalid model name"})
                    return
                missing = [d for d in body.get("files", {}).values() if d not in fake.blobs]
                lines: list[dict[str, Any]] = [{"status": "parsing GGUF"}]
                if missing:
                    lines.append({"error": f"blob {missing[0]} not found"})
                elif fake.create_error:
                    fake.models[body["model"]] = body  # half-written, as a real failure can leave it
                    lines.append({"error": fake.create_error})
                else:
                    fake.models[body["model"]] = body
                    lines += [{"status": "writing manifest"}, {"status": "success"}]
                if body.get("stream", True):
                    self._send(200, lines=lines)
                else:
                    last = lines[-1]
                    self._send(400 if "error" in last else 200, last)

            def _chat(self, body: dict[str, Any]) -> None:
                if body.get("model") not in fake.models:
                    self._send(404, {"error": f"model '{body.get('model')}' not found"})
                    return
                fake.prompts.append(self._prompt(body))
                base = {"model": body["model"], "created_at": "2026-01-01T00:00:00Z"}
                generate = self.path == "/api/generate"  # its answer is "response", not a "message"

                def text(content: str) -> dict[str, Any]:
                    return {"response": content} if generate else {"message": {"role": "assistant", "content": content}}

                final = {**base, **text(""), "done": True, "done_reason": fake.done_reason}
                if body.get("stream", True):
                    words = fake.answer.split(" ")
                    chunks = [{**base, **text(w + (" " if i < len(words) - 1 else "")), "done": False}
                              for i, w in enumerate(words)]
                    self._send(200, lines=[*chunks, final])
                else:
                    self._send(200, {**final, **text(fake.answer)})

            def _prompt(self, body: dict[str, Any]) -> str:
                """The prompt Ollama renders: a raw /api/generate prompt as sent; /api/chat's messages through the
                model's TEMPLATE with its SYSTEM (server/routes.go), by ftwiz's Go-template interpreter."""
                if self.path == "/api/generate":
                    assert body.get("raw"), "only raw /api/generate is modelled"
                    return str(body.get("prompt", ""))
                model = fake.models[body["model"]]
                if not model.get("template"):
                    return ""
                from ftwiz.core.deploy.probes import ollama_prompt

                return ollama_prompt(model["template"], body.get("messages", []), system=model.get("system"))

        return Handler
