"""DESIGN.md's rooms table names, for every step, the core function the wizard and the CLI both call: each name
must exist, so a reader following the table lands on real code (issue 22)."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rooms() -> list[tuple[str, list[str], list[str]]]:
    text = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    table = text[text.index("## Rooms"):]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("step", "---"):
            continue
        functions = re.findall(r"`([a-z_]+(?:\.[a-z_]+)*\.[A-Za-z_]+)`", cells[1])
        files = re.findall(r"`((?:cli|screens|widgets)/[a-z_]+\.py)`", cells[2] + " " + cells[3])
        rows.append((cells[0], functions, files))
    return rows


def test_every_step_has_a_core_function_that_exists() -> None:
    rows = _rooms()
    assert len(rows) >= 15, rows
    for step, functions, _ in rows:
        assert functions, f"{step}: no core function named"
        for dotted in functions:
            if importlib.util.find_spec(f"ftwiz.core.{dotted.rpartition('.')[0]}") is None:
                raise AssertionError(f"{step}: no module ftwiz.core.{dotted.rpartition('.')[0]}")
            module, _, name = dotted.rpartition(".")
            loaded = importlib.import_module(f"ftwiz.core.{module}")
            is_module = importlib.util.find_spec(f"ftwiz.core.{dotted}") is not None if hasattr(loaded, "__path__") \
                else False
            assert is_module or hasattr(loaded, name), f"{step}: ftwiz.core.{module} has no {name}"


def test_every_cli_module_and_screen_named_exists() -> None:
    for step, _, files in _rooms():
        for file in files:
            base = ROOT / ("core" if file.startswith("cli/") else "tui") / file
            assert base.is_file(), f"{step}: {file} does not exist"
