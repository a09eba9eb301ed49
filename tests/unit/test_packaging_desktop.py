"""The desktop menu entry: valid for freedesktop tools, opens ftwiz in a terminal, installs per user."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in desktop files
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def _validate(path: Path) -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    done = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_entry_opens_ftwiz_in_a_terminal() -> None:
    entry = _entry(PACKAGING / "ftwiz.desktop")
    assert entry["Type"] == "Application" and entry["Exec"] == "ftwiz"
    assert entry["Terminal"] == "true" and entry["Icon"] == "ftwiz"


def test_entry_is_valid() -> None:
    _validate(PACKAGING / "ftwiz.desktop")


def test_icon_is_a_square_svg() -> None:
    root = ET.parse(PACKAGING / "ftwiz.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert width == height


def _install(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PACKAGING / "install-desktop.sh"), *args], capture_output=True, text=True,
                          env=os.environ | {"XDG_DATA_HOME": str(tmp_path)} | env, check=True)


def test_install_script_follows_xdg_and_uninstalls(tmp_path: Path) -> None:
    _install(tmp_path, FTWIZ_BIN="/opt/ftwiz venv/bin/ftwiz")
    installed = tmp_path / "applications" / "ftwiz.desktop"
    icon = tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "ftwiz.svg"
    assert icon.read_bytes() == (PACKAGING / "ftwiz.svg").read_bytes()
    entry = _entry(installed)
    assert entry["Exec"] == '"/opt/ftwiz venv/bin/ftwiz"' and entry["Terminal"] == "true"
    assert not list(installed.parent.glob(".ftwiz.desktop.*"))  # no temp file left behind
    if shutil.which("desktop-file-validate"):
        _validate(installed)
    _install(tmp_path, "--uninstall")
    assert not installed.exists() and not icon.exists()
