"""The systemd user unit that keeps a GGUF served: valid for systemd, safe by default, never fatal without it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ftwiz.core.deploy.service import install_service, systemd_unit, uninstall_service
from ftwiz.core.errors import FtwizError


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    # The unit only needs a file that is a GGUF by its magic; serving it is ftwiz serve's test.
    path = tmp_path / "my model" / "tuned-Q8_0.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16)
    return path


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def _exec_start(unit: str) -> str:
    return next(line for line in unit.splitlines() if line.startswith("ExecStart="))


def test_unit_serves_the_gguf_on_loopback_and_restarts(gguf: Path) -> None:
    unit = systemd_unit(gguf, "tuned", port=8123)
    exec_start = _exec_start(unit)
    assert exec_start.startswith(f"ExecStart={sys.executable} -m ftwiz.core.deploy.llama_server ")
    # the path has a space: systemd must see it as one quoted word
    assert f'--model "{gguf.resolve()}"' in exec_start
    assert "--host 127.0.0.1 --port 8123" in exec_start
    assert "Restart=on-failure" in unit and "StandardOutput=journal" in unit
    assert "WantedBy=default.target" in unit


def test_systemd_accepts_the_unit(gguf: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    path = tmp_path / "ftwiz-tuned.service"
    path.write_text(systemd_unit(gguf, "tuned"), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # unknown keys or bad values are only warnings: any line about our file is a defect
    assert path.name not in done.stderr, done.stderr


def test_key_stays_off_the_command_line(gguf: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key.env"
    key_file.write_text("API_KEY=s3cret\n", encoding="utf-8")
    unit = systemd_unit(gguf, "tuned", host="0.0.0.0", api_key_file=key_file)
    assert "s3cret" not in unit
    assert f"EnvironmentFile={key_file.resolve()}" in unit
    assert "--host 0.0.0.0" in _exec_start(unit)


def test_refuses_an_open_network_server_and_bad_inputs(gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(FtwizError, match="without a key"):
        systemd_unit(gguf, "tuned", host="0.0.0.0")
    bare_key = tmp_path / "bare.key"
    bare_key.write_text("s3cret\n", encoding="utf-8")
    with pytest.raises(FtwizError, match="API_KEY"):
        systemd_unit(gguf, "tuned", api_key_file=bare_key)
    not_gguf = tmp_path / "model.safetensors"
    not_gguf.write_bytes(b"{}")
    with pytest.raises(FtwizError, match="not a GGUF"):
        systemd_unit(not_gguf, "tuned")
    with pytest.raises(FtwizError, match="no GGUF file"):
        systemd_unit(tmp_path / "missing.gguf", "tuned")


def test_install_without_systemd_writes_unit_and_says_what_to_run(gguf: Path, config_home: Path) -> None:
    said: list[str] = []
    result = install_service(gguf, "tuned", run=False, say=said.append)
    assert result.unit_path == config_home / "systemd" / "user" / "ftwiz-tuned.service"
    assert result.unit_path.read_text(encoding="utf-8") == systemd_unit(gguf, "tuned")
    assert not result.ran
    assert any("systemctl --user enable --now ftwiz-tuned.service" in line for line in said)
    with pytest.raises(FtwizError, match="already exists"):
        install_service(gguf, "tuned", run=False, say=said.append)
    install_service(gguf, "tuned", port=9000, run=False, overwrite=True, say=said.append)
    assert "--port 9000" in result.unit_path.read_text(encoding="utf-8")


def test_install_and_uninstall_drive_systemctl(gguf: Path, config_home: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A systemctl that records its arguments stands in for a user systemd instance.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    result = install_service(gguf, "tuned", say=lambda _line: None)
    assert result.ran
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls == ["--user show-environment", "--user daemon-reload", "--user enable --now ftwiz-tuned.service"]

    uninstall_service("tuned", say=lambda _line: None)
    assert not result.unit_path.exists()
    assert log.read_text(encoding="utf-8").splitlines()[-2:] == ["--user disable --now ftwiz-tuned.service",
                                                                  "--user daemon-reload"]
    with pytest.raises(FtwizError, match="no ftwiz service named 'tuned'"):
        uninstall_service("tuned", run=False, say=lambda _line: None)


def test_cli_verb_installs_from_a_gguf_without_starting(gguf: Path, config_home: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from ftwiz.core.cli import service as service_verb
    from ftwiz.core.deploy import service

    monkeypatch.setattr(service, "systemctl_user_works", lambda: False)  # never touch this machine's systemd

    parser = argparse.ArgumentParser()
    service_verb.add_arguments(parser)
    assert service_verb.run(parser.parse_args(["install", str(gguf), "--port", "8181", "--no-start"])) == 0
    unit = config_home / "systemd" / "user" / "ftwiz-tuned-Q8_0.service"
    assert "--port 8181" in unit.read_text(encoding="utf-8")
    assert "systemctl --user enable --now ftwiz-tuned-Q8_0.service" in capsys.readouterr().out
    assert service_verb.run(parser.parse_args(["uninstall", "tuned-Q8_0"])) == 0
    assert not unit.exists()
