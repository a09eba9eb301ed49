"""Serve and chat with a real GGUF exported from the tiny Llama model, the way a user would.

The tiny Llama (Llama-3 template, BOS added by llama.cpp) is used rather than the tiny Qwen2 because its
random weights answer with visible characters at temperature 0, where Qwen2's answer only newlines.

``ftwiz serve``: start, health, a real /v1/chat/completions round trip, API key, Ctrl-C stops it.
``ftwiz chat``: --once, --compare, a run directory, and an interactive session through a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from meta_gguf import read_context_length

CLI = [sys.executable, "-m", "ftwiz.tui.launcher_main"]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Path:
    convert = pytest.importorskip("ftwiz.core.export.convert",
                                  reason="the GGUF converter (ftwiz.core.export.convert) is not there yet")
    return convert.convert_to_gguf(tiny_llama, tmp_path_factory.mktemp("served") / "tiny-llama-F16.gguf", out_type="F16")


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _port_closed(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_server_start_health_chat_stop(tiny_gguf: Path) -> None:
    from ftwiz.core.deploy.server import snippets, start_server

    with start_server(tiny_gguf, api_key="s3cret", n_ctx=512, model_alias="tiny") as handle:
        assert handle.base_url.startswith("http://127.0.0.1:")
        reply = _post(handle.base_url + "/chat/completions",
                      {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8,
                       "temperature": 0}, handle.headers())
        choice = reply["choices"][0]
        assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length")
        assert reply["usage"]["completion_tokens"] >= 1
        unnamed = _post(handle.base_url + "/chat/completions",  # a client that names no model
                        {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2}, handle.headers())
        assert reply["model"] == unnamed["model"] == "tiny"  # the alias /v1/models lists, not the GGUF path
        with pytest.raises(urllib.error.HTTPError) as info:  # the key is enforced
            _post(handle.base_url + "/chat/completions", {"model": "tiny", "messages": []})
        assert info.value.code == 401
        text = snippets(handle)
        assert handle.base_url in text["curl"] and "Bearer s3cret" in text["curl"]
        assert 'model="tiny"' in text["openai"] and "ChatOpenAI" in text["langchain"]
        assert text["llama-server"].startswith(f"llama-server -m {tiny_gguf}") and "--jinja" in text["llama-server"]
        port = handle.port
    assert not handle.alive() and _port_closed(port)


def test_server_start_failure_is_explained(tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.deploy.server import start_server
    from ftwiz.core.errors import FtwizError

    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(FtwizError, match="not a readable GGUF file"):  # refused before a server starts
        start_server(bogus, startup_timeout=60)
    # a well-formed GGUF llama.cpp cannot load (no hyper-parameters, no vocabulary): the server's own exit
    writer = gguf.GGUFWriter(str(bogus), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(FtwizError, match="exited"):
        start_server(bogus, startup_timeout=60)


def _reader(stream) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], needle: str, timeout: float, seen: list[str]) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"'{needle}' not printed within {timeout}s; output so far:\n{''.join(seen)}")


def test_serve_cli_runs_until_ctrl_c(tiny_gguf: Path) -> None:
    from ftwiz.core.deploy.server import free_port

    port = free_port()
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*CLI, "serve", str(tiny_gguf), "--port", str(port), "--n-ctx", "512"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen: list[str] = []
    try:
        lines = _reader(proc.stdout)
        ready = _wait_for(lines, "base URL", 120, seen)
        assert f"http://127.0.0.1:{port}/v1" in ready
        _wait_for(lines, "Ctrl-C to stop", 10, seen)
        output = "".join(seen)
        assert "from openai import OpenAI" in output
        # llama.cpp's own server is offered only where it is installed (a snippet that cannot run is noise)
        assert ("llama-server -m" in output) == bool(shutil.which("llama-server"))
        models = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10).read())
        assert models["data"][0]["id"] == tiny_gguf.stem
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        _wait_for(lines, "server stopped", 5, seen)
        assert _port_closed(port)  # the llama.cpp child went with it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_chat_once_and_compare(tiny_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    args = ["--temperature", "0", "--max-tokens", "6", "--seed", "0"]
    assert main(["chat", str(tiny_gguf), "--once", "Hello", *args]) == 0
    first = capsys.readouterr().out
    assert first.strip()
    assert main(["chat", str(tiny_gguf), "--once", "Hello", *args]) == 0
    assert capsys.readouterr().out == first  # temperature 0 answers are repeatable
    assert main(["chat", str(tiny_gguf), "--once", "Hello", "--compare", str(tiny_gguf), *args]) == 0
    side_by_side = capsys.readouterr().out
    assert "base: " in side_by_side and "fine-tuned: " in side_by_side


def test_chat_a_run_directory(tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path))
    run = tmp_path / "run-1"
    (run / "export").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\nsystem: Be brief.\n")
    shutil.copy(tiny_gguf, run / "export" / "run-1-F16.gguf")
    assert main(["chat", "run-1", "--once", "Hi", "--max-tokens", "4", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["chat", "no-such-run/x.gguf", "--once", "Hi"]) == 2


class _Pty:
    """A child process on a pseudo-terminal: what a user's terminal sees and types."""

    def __init__(self, cmd: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, COLUMNS="120", LINES="40", TERM="xterm")
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.buffer = b""

    def expect(self, needle: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        target = needle.encode()
        while time.monotonic() < deadline:
            if target in self.buffer:
                index = self.buffer.index(target) + len(target)
                seen, self.buffer = self.buffer[:index], self.buffer[index:]
                return seen.decode(errors="replace")
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.buffer += os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    break
        raise AssertionError(f"'{needle}' not seen within {timeout}s; screen so far: {self.buffer[-2000:]!r}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_chat_in_a_terminal(tiny_gguf: Path, tmp_path: Path) -> None:
    transcript = tmp_path / "talk.json"
    term = _Pty([*CLI, "chat", str(tiny_gguf), "--temperature", "0", "--max-tokens", "6", "--system", "Be kind."])
    try:
        greeting = term.expect("you>")
        assert "chatting with" in greeting
        assert f"context {min(read_context_length(tiny_gguf), 4096)} tokens: the model's context_length" in greeting
        term.send("Hello there\r")
        answer = term.expect("you>")
        assert "tiny-llama-F16.gguf>" in answer  # the streamed answer is labelled with the model
        term.send("/help\r")
        assert "/reset" in term.expect("you>")
        term.send(f"/save {transcript}\r")
        assert "saved" in term.expect("you>")
        term.send("/reset\r")
        assert "conversation cleared" in term.expect("you>")
        term.send("\x04")  # Ctrl-D leaves
        assert term.proc.wait(30) == 0
    finally:
        term.close()
    saved = json.loads(transcript.read_text())
    assert saved["system"] == "Be kind." and saved["temperature"] == 0.0
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant"]
    assert saved["messages"][1]["content"] == "Hello there" and saved["messages"][2]["content"]
