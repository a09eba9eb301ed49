"""The core must stay UI-free and light: these are contracts other rooms rely on."""

from __future__ import annotations

import subprocess
import sys
import time


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    return set(out.stdout.split())


def test_core_never_imports_textual() -> None:
    modules = _modules_after(
        "import importlib, pkgutil, ftwiz.core\n"
        "for m in pkgutil.walk_packages(ftwiz.core.__path__, 'ftwiz.core.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    assert "textual" not in modules, "a module under ftwiz.core imported Textual"


def test_cli_help_does_not_import_torch_or_textual() -> None:
    modules = _modules_after("from ftwiz.core.cli import build_parser\nbuild_parser().format_help()")
    assert "torch" not in modules and "transformers" not in modules and "textual" not in modules


def test_ftwiz_help_is_fast_and_lists_every_verb() -> None:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ftwiz.tui.launcher_main", "--help"],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    for verb in ("doctor", "plan", "data", "train", "merge", "export", "register", "serve", "chat", "demo"):
        assert verb in out.stdout
    assert elapsed < 5.0, f"`ftwiz --help` took {elapsed:.1f}s; something heavy is imported at start-up"


def test_nothing_named_core_or_tui_is_importable_at_top_level() -> None:
    code = (
        "import importlib.util as u\n"
        "print(u.find_spec('core') is None and u.find_spec('tui') is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                         check=True)
    assert out.stdout.strip() == "True"
