"""What a user's install gets: a wheel with the whole ftwiz namespace and a working `ftwiz` entry point.

`pipx install ftwiz` and `uv tool install ftwiz` both install the wheel into a fresh environment and link its
console script; without network the dependencies cannot be fetched, so this installs the wheel alone
(`--no-deps`) beside the already-installed stack and runs what the user would run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = metadata.version("ftwiz")  # the checkout's own (editable) install: the same pyproject version


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True)
    return next(out.glob("ftwiz-*.whl"))


@pytest.mark.slow
def test_wheel_holds_core_tui_recipes_and_the_entry_point(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("ftwiz/core/cli/__init__.py", "ftwiz/core/cli/completion.py", "ftwiz/core/deploy/service.py",
                   "ftwiz/tui/launcher.py", "ftwiz/tui/launcher_main.py", "ftwiz/recipes/demo.yaml",
                   "ftwiz/recipes/demo/demo.jsonl"):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]" in text and "ftwiz = ftwiz.tui.launcher:main" in text


@pytest.mark.slow
def test_installed_wheel_runs_from_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    env = os.environ | {"PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import ftwiz.core.cli as m; print(m.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(target)), f"imported {where}, not the installed wheel"
    for cmd in ([sys.executable, "-m", "ftwiz.tui.launcher_main", "--version"], [str(target / "bin" / "ftwiz"),
                                                                                  "--version"]):
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == f"ftwiz {VERSION}"
    # the completion generator works from the installed package too (it walks every verb's parser)
    done = subprocess.run([sys.executable, "-m", "ftwiz.core.cli.completion", "bash"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)
    assert "complete -o default -F _ftwiz ftwiz" in done.stdout
