"""Startup stays fast: no ML library on the wizard's import path, first screen interactive in < 1 s."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "llama_cpp", "gguf")
SCREENS = ("base", "doctor", "model", "data", "plan", "train", "export", "deploy", "chat", "help", "confirm")


def test_importing_the_wizard_and_every_screen_loads_no_ml_library() -> None:
    code = (
        "import json, sys, ftwiz.tui.app, ftwiz.tui.launcher\n"
        f"for name in {SCREENS!r}:\n"
        "    __import__('ftwiz.tui.screens.' + name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == [], f"heavy modules imported at module level: {out.stdout}"


def test_first_screen_is_interactive_in_under_a_second_over_bare_textual(machine: Path) -> None:
    """The wizard's own share of startup (its imports, CSS, first screen) stays under a second.

    Measured over ``import textual.app`` in a fresh interpreter. On a machine so loaded that importing
    Textual alone takes over a second, the bound is that import time (both sides slow down alike).
    """
    spec = importlib.util.spec_from_file_location("tui_startup", REPO / "bench" / "tui_startup.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.measure(repeat=3, machine=str(machine))
    assert result["heavy_modules_loaded"] == []
    assert result["over_baseline_s"] < max(1.0, result["baseline_import_textual_s"]), result


def test_a_missing_recipe_is_a_user_error_before_the_screen_opens() -> None:
    out = subprocess.run([sys.executable, "-m", "ftwiz.tui.launcher_main", "wizard", "--machine", "x", "nope.yaml"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "recipe 'nope.yaml' not found" in out.stderr
