"""Keep a GGUF served after logout and reboot: a systemd *user* unit running llama-cpp-python's server.

    from ftwiz.core.deploy.service import install_service
    install_service("runs/demo/export/demo-Q8_0.gguf", "demo")      # then: curl 127.0.0.1:8080/v1/models

Why a user unit: it needs no root, lives in ``~/.config/systemd/user``, restarts the server when it
crashes and sends its output to the journal (``journalctl --user -u ftwiz-NAME``). ``ftwiz serve`` is
for a session; this is for "my model should just be there". The unit binds 127.0.0.1; another address
is refused unless an API key protects it. The key never appears on a command line (where ``ps`` shows
it): systemd reads it from an ``EnvironmentFile`` holding ``API_KEY=...``, a variable llama-cpp-python's
server settings read. Machines without systemd (containers, macOS, WSL without it) still get the unit
file and the commands to run; nothing fails because systemd is absent.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.paths import safe_name

DEFAULT_PORT = 8080
UNIT_PREFIX = "ftwiz-"


def unit_dir() -> Path:
    """Where systemd looks for a user's own units ($XDG_CONFIG_HOME/systemd/user)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def keys_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ftwiz" / "keys"


def unit_name(name: str) -> str:
    return f"{UNIT_PREFIX}{safe_name(name)}.service"


def _quote(arg: str) -> str:
    """One ExecStart word as systemd parses it: % and $ are its own specifiers, so they are doubled."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_gguf(gguf: str | Path) -> Path:
    path = Path(gguf).expanduser().resolve()
    if not path.is_file():
        raise FtwizError(f"no GGUF file at {path}", where=Location(file=path),
                         fix="export one first: ftwiz export RUN --quant Q4_K_M")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise FtwizError(f"{path} is not a GGUF file (it does not start with the GGUF magic)",
                             where=Location(file=path), fix="point at the .gguf that `ftwiz export` wrote")
    from ftwiz.core.gguf_info import read_gguf_info

    read_gguf_info(path)  # a header cut short or tensor data cut off: the service would fail and restart forever
    return path


def _check_key_file(api_key_file: str | Path) -> Path:
    path = Path(api_key_file).expanduser().resolve()
    if not path.is_file():
        raise FtwizError(f"no API key file at {path}", where=Location(file=path),
                         fix="write one: printf 'API_KEY=%s\\n' \"$(openssl rand -hex 16)\" > FILE; chmod 600 FILE")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not any(ln.startswith("API_KEY=") and len(ln) > len("API_KEY=") for ln in lines):
        raise FtwizError(f"{path} has no 'API_KEY=...' line", where=Location(file=path, field="API_KEY"),
                         fix="systemd reads it as an EnvironmentFile: put the key on a line 'API_KEY=YOUR_KEY'")
    return path


def systemd_unit(gguf: str | Path, name: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 api_key_file: str | Path | None = None, python: str = sys.executable,
                 n_ctx: int | None = None, force_unverified: bool = False) -> str:
    """The text of a user unit that serves ``gguf`` on host:port with an OpenAI-compatible API (``n_ctx`` None:
    the context ``ftwiz serve`` chooses, :func:`ftwiz.core.deploy.context_size.choose_n_ctx`). A GGUF whose
    ``export --verify`` failed is refused as ``ftwiz serve`` refuses it, unless ``force_unverified``."""
    from ftwiz.core.deploy.context_size import choose_n_ctx
    from ftwiz.core.deploy.server import _run_thinking, check_counts, server_command
    from ftwiz.core.export.verify_record import require_verified

    path = _check_gguf(gguf)
    require_verified(path, force=force_unverified, command="service install")
    n_ctx = choose_n_ctx(path, n_ctx).n_ctx
    check_counts({"--n-ctx": n_ctx})
    if not 1 <= port <= 65535:
        raise FtwizError(f"port {port} is not a TCP port", where="port", fix="use 1024-65535, e.g. 8080")
    key_path = _check_key_file(api_key_file) if api_key_file else None
    if not _is_loopback(host) and key_path is None:
        raise FtwizError(f"serving on {host} would let anyone on the network use the model without a key",
                         where="host", fix="keep host 127.0.0.1, or give an API key file (API_KEY=...)")
    alias = safe_name(name)
    command = server_command(path, host=host, port=port, api_key=None, n_ctx=n_ctx, model_alias=alias,
                             enable_thinking=_run_thinking(path))  # as the run trained (None: the default)
    command[0] = python
    lines = [
        "# Written by ftwiz (ftwiz.core.deploy.service). Logs: journalctl --user -u " + unit_name(name),
        "[Unit]",
        f"Description=ftwiz: OpenAI-compatible llama.cpp server for {alias} on {host}:{port}",
        "After=network.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(_quote(arg) for arg in command)}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if key_path:
        lines.append(f"EnvironmentFile={_quote(str(key_path))}")
    lines += [
        "Restart=on-failure",
        "RestartSec=5",
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier={UNIT_PREFIX}{alias}",
        "NoNewPrivileges=true",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def systemctl_user_works() -> bool:
    """True when a user systemd instance answers (False in most containers and without a login session)."""
    if shutil.which("systemctl") is None:
        return False
    try:
        done = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class ServiceResult:
    """What was written, which commands apply it, and whether ftwiz ran them."""

    unit_path: Path
    commands: list[list[str]]
    ran: bool = False
    messages: list[str] = field(default_factory=list)


def _run_commands(commands: list[list[str]], say: Callable[[str], None]) -> list[str]:
    problems = []
    for cmd in commands:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            problems.append(f"`{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()}")
            say(problems[-1])
    return problems


def install_service(gguf: str | Path, name: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                    api_key_file: str | Path | None = None, python: str = sys.executable,
                    n_ctx: int | None = None, overwrite: bool = False, run: bool | None = None,
                    say: Callable[[str], None] = print, force_unverified: bool = False) -> ServiceResult:
    """Write ``ftwiz-NAME.service`` atomically, then enable and start it when ``systemctl --user`` works.

    ``run``: None = run the systemctl commands only if systemd answers; False = only print them.
    """
    text = systemd_unit(gguf, name, host=host, port=port, api_key_file=api_key_file, python=python, n_ctx=n_ctx,
                        force_unverified=force_unverified)
    target = unit_dir() / unit_name(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text, overwrite=overwrite)
    commands = [["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", "--now", unit_name(name)]]
    result = ServiceResult(unit_path=target, commands=commands)
    say(f"wrote {target}")
    should_run = systemctl_user_works() if run is None else run
    if should_run:
        problems = _run_commands(commands, say)
        result.ran = not problems
        result.messages += problems
        if result.ran:
            say(f"started {unit_name(name)}: http://{host}:{port}/v1 (logs: journalctl --user -u {unit_name(name)})")
    else:
        say("systemd (user) is not available here; to start it on a machine that has it, run:")
        for cmd in commands:
            say("  " + " ".join(cmd))
        say(f"  loginctl enable-linger {os.environ.get('USER', '$USER')}   # keep it running after logout")
    return result


def uninstall_service(name: str, *, run: bool | None = None, say: Callable[[str], None] = print) -> ServiceResult:
    """Stop and disable ``ftwiz-NAME.service`` (when systemd answers) and delete its unit file."""
    target = unit_dir() / unit_name(name)
    if not target.is_file():
        installed = sorted(p.stem.removeprefix(UNIT_PREFIX) for p in unit_dir().glob(f"{UNIT_PREFIX}*.service"))
        raise FtwizError(f"no ftwiz service named '{name}'", where=Location(file=target),
                         fix=f"installed: {', '.join(installed)}" if installed else "nothing is installed")
    commands = [["systemctl", "--user", "disable", "--now", unit_name(name)],
                ["systemctl", "--user", "daemon-reload"]]
    result = ServiceResult(unit_path=target, commands=commands)
    should_run = systemctl_user_works() if run is None else run
    if should_run:
        result.messages += _run_commands(commands[:1], say)
    target.unlink()
    say(f"removed {target}")
    if should_run:
        result.messages += _run_commands(commands[1:], say)
        result.ran = not result.messages
    else:
        say("systemd (user) is not available here; if the service was running elsewhere, run:")
        for cmd in commands:
            say("  " + " ".join(cmd))
    return result
