"""Register a GGUF with Ollama through its REST API, then prove the model answers and stops.

Steps (Ollama's documented API, through the ``ollama`` client):

1. ``GET /api/version``: is Ollama there at all? If not, say how to install or start it.
2. ``HEAD /api/blobs/sha256:<hex>``; when missing, ``POST`` the file (``Client.create_blob``). The server
   checks the digest, so a corrupted upload fails here, not at chat time.
3. ``POST /api/create`` with ``files``, ``template``, ``parameters`` (one ``stop`` per end-of-turn
   control token, ``num_ctx``) and ``system``: the same :class:`ModelfileSpec` a Modelfile renders.
4. ``POST /api/chat`` smoke test: an answer arrives, ``done_reason`` is ``stop`` (the model ended its turn
   by itself), and no stop token leaked into the text.

Any failure after step 3 deletes the model again (``DELETE /api/delete``), so a user never finds a
half-working model in ``ollama list``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.deploy.modelfile import ModelfileSpec, modelfile_spec
from ftwiz.core.errors import FtwizError

DEFAULT_HOST = "http://127.0.0.1:11434"
SMOKE_PROMPT = "Hello! Please introduce yourself in one sentence."
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$")


@dataclass(frozen=True)
class SmokeTest:
    prompt: str
    answer: str
    done_reason: str | None


@dataclass(frozen=True)
class RegisterResult:
    name: str
    host: str
    digest: str
    modelfile: str
    stops: list[str]
    family: str
    uploaded: bool                 # False when Ollama already had the blob
    smoke: SmokeTest | None


def ollama_host(host: str | None = None) -> str:
    """Ollama's base URL as the CLI resolves it: ``--host``, else ``$OLLAMA_HOST``, else 127.0.0.1:11434."""
    value = (host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in value:
        value = "http://" + value
    scheme, rest = value.split("://", 1)
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("0.0.0.0"):
        hostport = "127.0.0.1" + hostport[len("0.0.0.0"):]
    if ":" not in hostport.rsplit("]", 1)[-1]:
        hostport += ":11434"
    return f"{scheme}://{hostport}"


def _not_reachable(host: str) -> FtwizError:
    if shutil.which("ollama") is None:
        return FtwizError(f"Ollama is not installed (no `ollama` on PATH) and nothing answers at {host}",
                          fix="install Ollama from https://ollama.com/download, start it with `ollama serve`, "
                              "then run this again (or use `ftwiz serve` / `ftwiz chat`, which need no Ollama)")
    return FtwizError(f"Ollama is installed but not running at {host}",
                      fix="start it with `ollama serve` (or open the Ollama app), or pass --host / set OLLAMA_HOST "
                          "if it listens elsewhere")


def sha256_digest(path: Path, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a file, read in chunks (GGUFs are GBs)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


class _Ollama:
    """The ``ollama`` client plus the two plain HTTP calls it lacks (version, blob HEAD), with errors mapped."""

    def __init__(self, host: str, timeout: float) -> None:
        import httpx
        import ollama

        self.host = host
        self.client = ollama.Client(host=host, timeout=timeout)
        self.http = httpx.Client(base_url=host, timeout=timeout)
        self._ollama = ollama
        self._httpx = httpx

    def call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConnectionError, self._httpx.ConnectError):
            raise _not_reachable(self.host) from None
        except self._httpx.TimeoutException:
            raise FtwizError(f"Ollama at {self.host} did not answer in time while trying to {what}",
                             fix="check `ollama ps` and the Ollama server log, then try again") from None
        except self._ollama.ResponseError as exc:
            raise FtwizError(f"Ollama refused to {what}: {exc.error} (HTTP {exc.status_code})",
                             fix="see the Ollama server log (`journalctl -u ollama` or ~/.ollama/logs/server.log)") from None

    def version(self) -> str:
        response = self.call("report its version", self.http.get, "/api/version")
        if response.status_code != 200:
            raise FtwizError(f"{self.host} answered /api/version with HTTP {response.status_code}; is it Ollama?",
                             fix="point --host / OLLAMA_HOST at the Ollama server")
        return str(response.json().get("version", "unknown"))

    def has_blob(self, digest: str) -> bool:
        return self.call("check a blob", self.http.head, f"/api/blobs/{digest}").status_code == 200

    def exists(self, name: str) -> bool:
        response = self.call("look up the model", self.http.post, "/api/show", json={"model": name})
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise FtwizError(f"Ollama answered /api/show for '{name}' with HTTP {response.status_code}: "
                         f"{response.text[:200]}", fix="see the Ollama server log")

    def close(self) -> None:
        self.http.close()


def _smoke_test(api: _Ollama, name: str, stops: list[str], num_predict: int) -> SmokeTest:
    response = api.call("chat with the new model", api.client.chat, model=name,
                        messages=[{"role": "user", "content": SMOKE_PROMPT}],
                        options={"temperature": 0, "num_predict": num_predict, "seed": 0}, stream=False)
    answer = response.message.content or ""
    smoke = SmokeTest(SMOKE_PROMPT, answer, response.done_reason)
    leaked = [s for s in stops if s in answer]
    if not answer.strip():
        raise FtwizError(f"'{name}' registered but answered nothing to a test prompt",
                         fix="check the export with `ftwiz export --verify`; the TEMPLATE may not match the training")
    if leaked:
        raise FtwizError(f"'{name}' leaked stop token(s) {leaked} into its answer: {answer[:200]!r}",
                         fix="the end-of-turn token is not treated as special; export again from the fine-tuned "
                             "tokenizer")
    if response.done_reason != "stop":
        raise FtwizError(f"'{name}' did not stop by itself within {num_predict} tokens "
                         f"(done_reason={response.done_reason!r}); it would ramble in chat",
                         fix="train longer or check that training data ends assistant turns with the end-of-turn "
                             "token; `ftwiz chat` on the GGUF shows the raw behaviour")
    return smoke


def register(gguf_path: str | Path, name: str, *, system: str | None = None, num_ctx: int | None = None,
             host: str | None = None, smoke_test: bool = True, adapter: str | Path | None = None,
             license: str | None = None, overwrite: bool = False, timeout: float = 600.0,
             smoke_num_predict: int = 256, on_status: Callable[[str], None] | None = None,
             enable_thinking: bool | None = None, force_unverified: bool = False) -> RegisterResult:
    """Register ``gguf_path`` as Ollama model ``name`` and smoke-test it; never leaves a half-registered model.

    ``enable_thinking``: the recipe's flag for hybrid-thinking templates (None: the template's default).
    ``force_unverified``: register even a GGUF whose ``export --verify`` failed (otherwise FtwizError).
    """
    if not _NAME.match(name):
        raise FtwizError(f"'{name}' is not a valid Ollama model name", where="name",
                         fix="use letters, digits, '.', '_' or '-', optionally 'namespace/name:tag' (e.g. my-bot:v1)")
    spec: ModelfileSpec = modelfile_spec(gguf_path, system=system, num_ctx=num_ctx, adapter=adapter, license=license,
                                         enable_thinking=enable_thinking, force=force_unverified)
    say = on_status or (lambda _text: None)
    base = ollama_host(host)
    api = _Ollama(base, timeout)
    try:
        say(f"Ollama {api.version()} at {base}")
        if not overwrite and api.exists(name):
            raise FtwizError(f"an Ollama model named '{name}' already exists", where="name",
                             fix="choose another name, or pass --force to replace it")
        digest, uploaded = _upload(api, spec.gguf, say)
        adapters = None
        if spec.adapter is not None:
            adapter_digest, _ = _upload(api, spec.adapter, say)
            adapters = {spec.adapter.name: adapter_digest}
        created = False
        try:
            say(f"creating '{name}'")
            stream = api.call("create the model", api.client.create, model=name, files={spec.gguf.name: digest},
                              adapters=adapters, template=spec.template.template, system=spec.system,
                              parameters=spec.parameters, license=spec.license, stream=True)
            created = True  # from here on, a failure must remove whatever Ollama wrote
            last = ""
            for progress in _iterate(api, stream):
                last = progress.status or last
                say(last)
            if last != "success":
                raise FtwizError(f"Ollama stopped creating '{name}' without success (last status: {last!r})",
                                 fix="see the Ollama server log")
            smoke = _smoke_test(api, name, spec.stops, smoke_num_predict) if smoke_test else None
        except BaseException:
            if created:
                _delete_quietly(api, name)
            raise
        return RegisterResult(name=name, host=base, digest=digest, modelfile=spec.render(), stops=spec.stops,
                              family=spec.template.family, uploaded=uploaded, smoke=smoke)
    finally:
        api.close()


def _iterate(api: _Ollama, stream: Any) -> Any:
    """Iterate a streamed create, mapping in-stream errors ({"error": ...}) to FtwizError."""
    iterator = iter(stream)
    while True:
        try:
            item = api.call("create the model", next, iterator)
        except StopIteration:
            return
        yield item


def _upload(api: _Ollama, path: Path, say: Callable[[str], None]) -> tuple[str, bool]:
    say(f"hashing {path.name}")
    digest = sha256_digest(path)
    if api.has_blob(digest):
        say("Ollama already has this file")
        return digest, False
    say(f"uploading {path.name}")
    sent = api.call("receive the GGUF", api.client.create_blob, path)
    if sent != digest:
        raise FtwizError(f"{path} changed while it was being uploaded", where=str(path),
                         fix="wait for whatever writes the file to finish, then register again")
    return digest, True


def _delete_quietly(api: _Ollama, name: str) -> None:
    # best effort: the original error is the one to report
    with contextlib.suppress(Exception):
        api.client.delete(name)


def unregister(name: str, *, host: str | None = None, timeout: float = 60.0) -> None:
    """Remove an Ollama model (used by ``ftwiz models rm --ollama``)."""
    api = _Ollama(ollama_host(host), timeout)
    try:
        api.call(f"delete '{name}'", api.client.delete, name)
    finally:
        api.close()
