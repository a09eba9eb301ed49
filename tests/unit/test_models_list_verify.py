"""`ftwiz models list` says whether each GGUF passed `export --verify`: passed, FAILED, not verified or stale.

The records are written as `export --verify` writes them (a VerifyReport beside the GGUF, after it); the
verdict shown must agree with what register/chat/serve do with the same file (require_verified).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from ftwiz.core.cli import main
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.verify import Check, VerifyReport
from ftwiz.core.export.verify_record import record_path, require_verified


@pytest.fixture()
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_dir: Path) -> dict[str, Path]:
    """Four runs, each with one exported GGUF (llama.cpp's Phi-3 vocab file stands in for the export)."""
    source = shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf"
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("COLUMNS", "220")
    ggufs = {}
    for name in ("good", "bad", "plain", "redone"):
        run = tmp_path / "runs" / name
        (run / "export").mkdir(parents=True)
        (run / "recipe.yaml").write_text("model_name_or_path: demo\n")
        ggufs[name] = run / "export" / f"{name}-Q8_0.gguf"
        shutil.copyfile(source, ggufs[name])
    _record(ggufs["good"], passed=True)
    _record(ggufs["bad"], passed=False)
    _record(ggufs["redone"], passed=False)
    stat = record_path(ggufs["redone"]).stat()
    os.utime(ggufs["redone"], (stat.st_atime, stat.st_mtime + 10))  # exported again later without --verify
    return ggufs


def _record(gguf: Path, *, passed: bool) -> None:
    report = VerifyReport(gguf_path=str(gguf), hf_model_dir="/hf/model", quant="Q8_0", checks=[
        Check(name="tokenization", passed=passed, detail="ids differ in prompt 2 at token 5"),
        Check(name="logits", passed=True), Check(name="eos", passed=True)])
    record_path(gguf).write_text(report.to_json())


def _rows(out: str) -> dict[str, str]:
    """The table's rows by model name (rich draws the cells between │)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 5 and cells[1].endswith(".gguf"):
            rows[cells[1]] = line
    return rows


def test_models_list_shows_each_verify_verdict(exports: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "model" in line and "quant" in line)
    assert [c.strip() for c in header.split("┃")][1:7] == ["model", "size", "quant", "run", "verified", "registered"]
    rows = _rows(out)
    assert "passed" in rows["good-Q8_0.gguf"] and "FAILED" not in rows["good-Q8_0.gguf"]
    assert "FAILED (tokenization)" in rows["bad-Q8_0.gguf"]
    assert "not verified" in rows["plain-Q8_0.gguf"]
    assert "stale (was FAILED)" in rows["redone-Q8_0.gguf"]
    # the listing agrees with the gate: the FAILED one is refused, the stale one is used as unverified
    with pytest.raises(FtwizError, match="tokenization"):
        require_verified(exports["bad"])
    assert require_verified(exports["redone"]) == [] and require_verified(exports["good"]) == []


def test_models_list_json_and_show_carry_the_verdict(exports: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    states = {Path(e["path"]).name: e["verify"] for e in json.loads(capsys.readouterr().out)}
    assert {name: v["state"] for name, v in states.items()} == {
        "good-Q8_0.gguf": "passed", "bad-Q8_0.gguf": "failed", "plain-Q8_0.gguf": "unverified",
        "redone-Q8_0.gguf": "stale"}
    assert states["bad-Q8_0.gguf"]["failed_checks"] == ["tokenization"]
    assert states["redone-Q8_0.gguf"]["was"] == "failed"
    assert main(["models", "show", "bad"]) == 0
    shown = capsys.readouterr().out
    assert "FAILED (tokenization)" in shown and str(record_path(exports["bad"].resolve())) in shown.replace("\n", "")


def test_a_damaged_record_is_listed_not_a_crash(exports: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    record_path(exports["good"]).write_text("{ not json")
    assert main(["models", "list"]) == 0
    assert "record unreadable" in _rows(capsys.readouterr().out)["good-Q8_0.gguf"]


def test_models_alone_lists_them(exports: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`ftwiz models` with no action was an argparse error ("the following arguments are required: action")."""
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert main(["models"]) == 0
    assert capsys.readouterr().out == listed and "FAILED (tokenization)" in listed
