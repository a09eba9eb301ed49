"""Small modules with one job: no Python file under core/ or tui/ grows past 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def test_no_module_over_400_lines() -> None:
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for top in ("core", "tui") for path in (ROOT / top).rglob("*.py")}
    assert len(sizes) > 100  # the scan saw the packages
    too_long = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not too_long, f"split these by job (at most {MAX_LINES} lines each): {too_long}"
