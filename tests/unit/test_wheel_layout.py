"""The wheel installs everything under `ftwiz` and nothing named `core` or `tui` at the top level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_only_the_ftwiz_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("ftwiz-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"ftwiz", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    # package data a user needs at run time travels with the wheel
    assert "ftwiz/recipes/demo.yaml" in names
    assert "ftwiz/core/tiny/corpus.txt" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ftwiz = ftwiz.tui.launcher:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
