"""An OpenAI-compatible server for a GGUF: llama-cpp-python's ``llama_cpp.server`` in a child process.

Why a child process: the server owns the model's memory and threads; running it apart means Ctrl-C,
a crash or an out-of-memory kill cannot take the wizard or the caller down, and stopping it is a
signal. The server uses the chat template embedded in the GGUF, so answers are formatted exactly as
in training. It binds 127.0.0.1 unless the user asks otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ftwiz.core.deploy.context_size import llama_cpp_n_ctx
from ftwiz.core.errors import FtwizError


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_counts(options: dict[str, int | None]) -> None:
    """FtwizError for the first of ``options`` (flag -> value; None: not given) below 1: llama.cpp answers a
    context of 0 tokens or -1 threads with "Failed to create llama_context", read as a broken GGUF."""
    for option, value in options.items():
        if value is not None and value < 1:
            raise FtwizError(f"{option} {value} must be at least 1", where=option,
                             fix=f"leave {option} out for the default, or give a positive number")


def _check_port_free(host: str, port: int) -> None:
    """FtwizError when something already listens on ``host:port`` (an earlier `ftwiz serve`, another server).

    SO_REUSEADDR as uvicorn sets it, so a port a stopped server left in TIME_WAIT still counts as free.
    """
    import errno

    if not 0 <= port <= 65535:
        raise FtwizError(f"--port {port} is not a TCP port", where="--port",
                         fix="use 1024-65535, or leave --port out to get a free one")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
                raise FtwizError(f"--host {host} is not an address of this machine", where="--host",
                                 fix="use 127.0.0.1 (this machine only), or 0.0.0.0 (every network, with "
                                     "--api-key)") from None
            if exc.errno != errno.EADDRINUSE:
                return  # e.g. a privileged port: the server's own error says more
            raise FtwizError(f"port {port} on {host} is already in use", where="--port",
                             fix="pick another --port (or leave it out to get a free one), or stop the program "
                                 "using it, e.g. an earlier `ftwiz serve`") from None


@dataclass
class ServerHandle:
    """A running server: where it answers, what it serves, and how to stop it."""

    process: subprocess.Popen[bytes]
    gguf: Path
    host: str
    port: int
    model_alias: str
    api_key: str | None
    n_ctx: int
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def server_command(gguf: Path, *, host: str, port: int, api_key: str | None, n_ctx: int,
                   model_alias: str, n_threads: int | None = None, enable_thinking: bool | None = None) -> list[str]:
    """The server's command line: ``llama_cpp.server`` through ``ftwiz.core.deploy.llama_server`` (options are
    its pydantic settings; a request naming no model is answered with ``model_alias``).

    ``enable_thinking`` (a hybrid-thinking template's flag, as the run trained with) goes to the template
    through the server's ``chat_template_kwargs`` setting, like llama.cpp's own server option.
    """
    cmd = [sys.executable, "-m", "ftwiz.core.deploy.llama_server",  # llama_cpp.server answering with the alias
           "--model", str(gguf), "--host", host, "--port", str(port),
           "--n_ctx", str(llama_cpp_n_ctx(n_ctx)), "--model_alias", model_alias,  # the window llama.cpp allocates
           # the Jinja template embedded in the GGUF, never a built-in format llama-cpp-python guesses
           "--chat_format", "chat_template.default"]
    if api_key:
        cmd += ["--api_key", api_key]
    if n_threads:
        cmd += ["--n_threads", str(n_threads)]
    if enable_thinking is not None:
        cmd += ["--chat_template_kwargs", json.dumps({"enable_thinking": enable_thinking})]
    return cmd


def _get_models(handle: ServerHandle, timeout: float = 2.0) -> dict[str, object] | None:
    request = urllib.request.Request(handle.base_url + "/models", headers=handle.headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local URL we built
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def start_server(gguf_path: str | Path, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None,
                 n_ctx: int | None = None, model_alias: str | None = None, n_threads: int | None = None,
                 startup_timeout: float = 120.0, enable_thinking: bool | None = None) -> ServerHandle:
    """Start the server and return once ``/v1/models`` lists the model; FtwizError with the log otherwise.

    ``n_ctx`` (tokens) defaults to :func:`ftwiz.core.deploy.context_size.choose_n_ctx`'s choice (``ftwiz serve``
    and the wizard pass the one :func:`ftwiz.core.deploy.serve_step.serve_inputs` made, with its reason).
    ``enable_thinking`` defaults to what the GGUF's run trained with (None: the template's own default).
    """
    gguf = Path(gguf_path).expanduser().resolve()
    if not gguf.is_file():
        raise FtwizError(f"GGUF file not found: {gguf}", where=str(gguf),
                         fix="give the path of a .gguf file (ftwiz export writes them to runs/<run>/export/)")
    from ftwiz.core.gguf_info import read_gguf_info

    info = read_gguf_info(gguf)  # a text file, an empty or a cut-off GGUF: said here, not as the server's traceback
    if n_ctx is None:
        from ftwiz.core.deploy.context_size import choose_n_ctx

        n_ctx = choose_n_ctx(gguf, context_length=info.context_length).n_ctx
    check_counts({"--n-ctx": n_ctx, "--threads": n_threads})
    _check_port_free(host, port)  # port 0: the host is checked, the OS picks the port below
    try:
        import llama_cpp.server  # noqa: F401 - only to fail early with a clear message
    except ImportError as exc:
        raise FtwizError(f"llama-cpp-python's server is not installed ({exc})",
                         fix="pip install 'llama-cpp-python[server]'") from None
    chosen_port = port or free_port(host if host not in ("0.0.0.0", "") else "127.0.0.1")
    alias = model_alias or gguf.stem
    log_dir = Path(tempfile.mkdtemp(prefix="ftwiz-serve-"))
    log_path = log_dir / "server.log"
    thinking = enable_thinking if enable_thinking is not None else _run_thinking(gguf)
    cmd = server_command(gguf, host=host, port=chosen_port, api_key=api_key, n_ctx=n_ctx, model_alias=alias,
                         n_threads=n_threads, enable_thinking=thinking)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    handle = ServerHandle(process=process, gguf=gguf, host=host, port=chosen_port, model_alias=alias,
                          api_key=api_key, n_ctx=n_ctx, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    try:
        while time.monotonic() < deadline:
            if not handle.alive():
                raise FtwizError(f"the llama.cpp server exited (code {process.returncode}) before it was ready:\n"
                                 f"{handle.log_tail()}", where=str(gguf),
                                 fix="check the GGUF with `ftwiz export --verify`, or pick another --port")
            models = _get_models(handle)
            if models is not None and any(m.get("id") == alias for m in models.get("data", [])):  # type: ignore[union-attr]
                return handle
            time.sleep(0.25)
        raise FtwizError(f"the llama.cpp server did not become ready within {startup_timeout:.0f} s:\n"
                         f"{handle.log_tail()}", fix="a large model may need longer; see the log above")
    except BaseException:
        handle.stop()
        raise


def llama_server_command(handle_or_gguf: ServerHandle | str | Path, *, host: str = "127.0.0.1", port: int = 8080,
                         api_key: str | None = None, n_ctx: int | None = None, alias: str | None = None) -> str:
    """The equivalent command for users who have llama.cpp's own ``llama-server`` (same template, via --jinja;
    ``n_ctx`` None: the context ``ftwiz serve`` would choose)."""
    if isinstance(handle_or_gguf, ServerHandle):
        h = handle_or_gguf
        gguf, host, port, api_key, n_ctx, alias = h.gguf, h.host, h.port, h.api_key, h.n_ctx, h.model_alias
    else:
        gguf = Path(handle_or_gguf)
    if n_ctx is None:
        from ftwiz.core.deploy.context_size import choose_n_ctx

        n_ctx = choose_n_ctx(gguf).n_ctx
    parts = ["llama-server", "-m", _shell(str(gguf)), "--host", host, "--port", str(port), "-c", str(n_ctx), "--jinja"]
    if alias:
        parts += ["--alias", _shell(alias)]
    if api_key:
        parts += ["--api-key", _shell(api_key)]
    thinking = _run_thinking(gguf)
    if thinking is not None:  # the GGUF's template defaults to it already; said explicitly for the reader
        parts += ["--chat-template-kwargs", _shell(json.dumps({"enable_thinking": thinking}))]
    return " ".join(parts)


def _run_thinking(gguf: Path) -> bool | None:
    """The ``enable_thinking`` this GGUF was trained with (None: not set, or not a fine-tune ftwiz knows): the
    file's own ``ftwiz.enable_thinking`` first (it may have been moved, renamed or copied; chat reads it so
    too), else the run folder it sits in."""
    from ftwiz.core.chat_templates import record_of_model_dir
    from ftwiz.core.trained_context import read_gguf_context

    carried = read_gguf_context(gguf)
    if carried is not None:  # the file records its run: its choice, or None (the template's default) as trained
        return carried.enable_thinking
    record = record_of_model_dir(gguf.parent)
    return record.enable_thinking if record is not None else None


def _shell(text: str) -> str:
    import shlex

    return shlex.quote(text)


def first_messages(system: str | None, template: str | None = None, hello: str = "Hello!") -> list[dict[str, str]]:
    """The snippets' first request: ``system`` (the prompt the model was trained with) first, or folded into
    the user turn when ``template`` has no system role (as training folded it); then ``hello``."""
    messages = [*([{"role": "system", "content": system}] if system else []), {"role": "user", "content": hello}]
    if system and template:
        from ftwiz.core.chat_templates.system_fold import as_accepted

        try:
            return as_accepted(template, messages, bos_token="", eos_token="")
        except FtwizError:  # the template refuses it either way: show the plain request
            return messages
    return messages


def snippets(handle: ServerHandle, system: str | None = None, template: str | None = None) -> dict[str, str]:
    """Ready-to-paste client code for the running server: curl, the openai client, LangChain.

    ``system``: the system prompt the model was trained with (a recipe's ``system:``). The server adds none
    itself, so the snippets send it first (see :func:`first_messages`; ``template``: the GGUF's)."""
    key = handle.api_key or "not-needed"
    auth = f' \\\n  -H "Authorization: Bearer {handle.api_key}"' if handle.api_key else ""
    messages = first_messages(system, template)
    body = json.dumps({"model": handle.model_alias, "messages": messages})
    python_messages = json.dumps(messages)  # JSON strings are Python string literals too
    langchain_input = ("[" + ", ".join(f'({json.dumps(m["role"])}, {json.dumps(m["content"])})' for m in messages)
                       + "]") if system else '"Hello!"'
    return {
        "curl": f"curl {handle.base_url}/chat/completions \\\n  -H \"Content-Type: application/json\"{auth} \\\n"
                f"  -d {_shell(body)}",  # a system prompt may hold a quote
        "openai": "from openai import OpenAI\n\n"
                  f'client = OpenAI(base_url="{handle.base_url}", api_key="{key}")\n'
                  "reply = client.chat.completions.create(\n"
                  f'    model="{handle.model_alias}",\n'
                  f"    messages={python_messages},\n)\n"
                  "print(reply.choices[0].message.content)",
        "langchain": "from langchain_openai import ChatOpenAI\n\n"
                     f'llm = ChatOpenAI(base_url="{handle.base_url}", api_key="{key}", model="{handle.model_alias}")\n'
                     f"print(llm.invoke({langchain_input}).content)",
        "llama-server": llama_server_command(handle),
    }
