"""``ftwiz eval`` as a user runs it: a trained tiny run in, report + plot out; bad input exits 2 with a fix.

The HF-vs-GGUF parity check runs in-process in tests/unit/test_eval_runner.py (same code path as
``--gguf``, without a second interpreter start).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "ftwiz_eval_rundir", Path(__file__).resolve().parents[1] / "unit" / "test_eval_rundir.py")
_rundir = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_rundir)
eval_run_template = _rundir.eval_run_template
eval_run = _rundir.eval_run

pytestmark = pytest.mark.slow


def _ftwiz(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftwiz.tui.launcher_main", *args], capture_output=True, text=True,
                          input=stdin, timeout=300, env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"})


def test_eval_cli_writes_report_plot_and_review_votes(eval_run: Path) -> None:
    # "r" (the reference beats both) always yields a pair, whatever order A and B were shown in.
    done = _ftwiz("eval", str(eval_run), "--max-samples", "3", "--max-new-tokens", "12", "--review",
                  stdin="r\nr\nr\n")
    assert done.returncode == 0, done.stderr
    assert "ROUGE-L" in done.stdout and "forgetting:" in done.stdout and "better answer?" in done.stdout
    for name in ("report.md", "report.json", "loss.png"):
        assert (eval_run / "eval" / name).stat().st_size > 100, name
    report = json.loads((eval_run / "eval" / "report.json").read_text())
    assert report["n_samples"] == 3 and [m["label"] for m in report["models"]] == ["base", "tuned"]
    assert report["generation"]["max_new_tokens"] == 12
    references = {s["reference"] for s in report["samples"]}
    pairs = [json.loads(line) for line in (eval_run / "eval" / "preferences.jsonl").read_text().splitlines()]
    differing = [s for s in report["samples"] if s["outputs"]["base"] != s["outputs"]["tuned"]]
    assert len(pairs) == len(differing) >= 1
    assert all(set(p) == {"prompt", "chosen", "rejected"} and p["chosen"] in references for p in pairs)


def test_eval_cli_bad_input_exits_2_with_a_fix(eval_run: Path, tmp_path: Path) -> None:
    done = _ftwiz("eval", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "error:" in done.stderr and "fix:" in done.stderr
    (eval_run / "data" / "test.jsonl").unlink()
    done = _ftwiz("eval", str(eval_run))
    assert done.returncode == 2 and "no 'test' split" in done.stderr and "--split validation" in done.stderr
