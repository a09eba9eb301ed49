"""A GGUF that failed ``ftwiz export --verify`` is still refused after ``mv`` or ``cp`` to another folder.

The verdict was kept only beside the file (``<file>.gguf.verify.json``); moved away from it, the GGUF was
taken for an unverified one and ``ftwiz chat``/``serve`` used it without a word. Oracle: what the same
commands answer for the file before it moved.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.export.verify_record import write_verify_record
from ftwiz.core.export.verify_report import Check, VerifyReport


@pytest.fixture()
def failed_gguf(tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny GGUF with the record `export --verify` writes for a failed tokenization check (kept in this
    test's own data dir: the session's other tests export the same bytes)."""
    from ftwiz.core.export.convert import convert_to_gguf

    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))

    gguf = convert_to_gguf(tiny_qwen2, tmp_path / "run-export" / "aria-F16.gguf", "F16")
    write_verify_record(gguf, VerifyReport(gguf_path=str(gguf), hf_model_dir=str(tiny_qwen2), quant="F16", checks=[
        Check(name="tokenization", passed=False, detail="ids differ in prompt 2 at token 5"),
        Check(name="logits", passed=True)]))
    return gguf


def _refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = cli_main(argv)
    err = capsys.readouterr().err
    assert code != 0, err
    return " ".join(err.split())


def _what(refusal: str) -> str:
    return re.sub(r"^error: \S+\.json: ", "", refusal)


def test_a_failed_verdict_follows_the_gguf_when_moved_or_copied(failed_gguf: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.export.verify_record import verify_status

    before = _refusal(["chat", str(failed_gguf), "--once", "hi"], capsys)
    assert "failed `ftwiz export --verify`: tokenization" in before and "--force" in before
    moved = tmp_path / "models" / "aria.gguf"
    moved.parent.mkdir()
    shutil.move(failed_gguf, moved)  # the record stays behind in run-export/
    assert not moved.with_name(moved.name + ".verify.json").exists()
    after = _refusal(["chat", str(moved), "--once", "hi"], capsys)
    # the same refusal, naming the same checks and fixes (the record it names is the one kept for its content)
    assert _what(after).replace("aria.gguf", "aria-F16.gguf") == _what(before)
    assert "failed `ftwiz export --verify`" in _refusal(["serve", str(moved)], capsys)
    copied = shutil.copy(moved, tmp_path / "elsewhere.gguf")  # a copy (new mtime, another folder) too
    assert "tokenization" in _refusal(["chat", str(copied), "--once", "hi"], capsys)
    assert verify_status(copied).label == "FAILED (tokenization)"  # ftwiz models list


def test_a_fresh_export_does_not_inherit_a_kept_verdict(failed_gguf: Path, tiny_qwen2: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Exported again without --verify, the same bytes are unverified again (as beside the file), and a GGUF
    with other content never takes the kept verdict."""
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.export.verify_record import read_verify_record

    other = Path(export_model(tiny_qwen2, ["Q8_0"], out=tmp_path / "other" / "m.gguf").gguf_paths[0])
    assert read_verify_record(other) is None
    moved = shutil.move(failed_gguf, tmp_path / "moved.gguf")
    assert read_verify_record(moved) is not None
    again = Path(export_model(tiny_qwen2, ["F16"], out=tmp_path / "again" / "m.gguf").gguf_paths[0])
    assert again.read_bytes() == Path(moved).read_bytes()
    assert read_verify_record(again) is None and read_verify_record(moved) is None


@pytest.mark.parametrize("record_age", ["newer", "older"])
def test_a_failed_gguf_moved_onto_a_passed_exports_path_is_still_refused(
        failed_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], record_age: str) -> None:
    """``mv failed.gguf models/aria.gguf`` over an earlier export that passed: the record beside the path judged
    the old bytes (newer than the moved file, as mv keeps its mtime, or older: stale), not these."""
    import os

    from ftwiz.core.export.verify_record import verify_status

    before = _refusal(["chat", str(failed_gguf), "--once", "hi"], capsys)
    target = tmp_path / "models" / "aria-F16.gguf"
    target.parent.mkdir()
    target.write_bytes(failed_gguf.read_bytes()[:-1] + b"\0")  # an earlier export: other bytes, same size
    write_verify_record(target, VerifyReport(gguf_path=str(target), hf_model_dir="m", quant="F16",
                                             checks=[Check(name="tokenization", passed=True)]))
    assert verify_status(target).label == "passed"
    record = target.with_name(target.name + ".verify.json")
    stamp = record.stat().st_mtime + (-100 if record_age == "newer" else 100)
    os.utime(failed_gguf, (stamp, stamp))
    shutil.move(failed_gguf, target)
    assert verify_status(target).label == "FAILED (tokenization)"  # ftwiz models list
    assert _what(_refusal(["chat", str(target), "--once", "hi"], capsys)) == _what(before)
    assert "failed `ftwiz export --verify`" in _refusal(["serve", str(target)], capsys)
