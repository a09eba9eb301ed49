"""`export --verify` records survive the move of the export's result types from pydantic to dataclasses.

A user's disk holds `<file>.gguf.verify.json` records written by earlier ftwiz versions (pydantic's
`model_dump_json(indent=2)`); register/chat/serve and `models list` must keep reading them, a record the
export writes now must read back as the same report, and a damaged record must still be refused with an
error naming the file (never taken for a pass, never a traceback). `ftwiz export` itself must not import
pydantic (its start-up time is part of the whole command's speed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.verify import Check, VerifyReport
from ftwiz.core.export.verify_record import (
    failed_checks,
    read_verify_record,
    record_path,
    verify_status,
    write_verify_record,
)

# Written literally as pydantic 2's VerifyReport.model_dump_json(indent=2) laid it out (non-ASCII kept as
# UTF-8, a NaN value as null): records like this one are on users' disks.
PYDANTIC_RECORD = """{
  "gguf_path": "/runs/demo/export/demo-Q8_0.gguf",
  "hf_model_dir": "/runs/demo/merged",
  "quant": "Q8_0",
  "checks": [
    {
      "name": "tokenization",
      "passed": false,
      "detail": "'  Indented line\\nwith a new': first difference at token 7 (HF [2, 3], GGUF [4]) café",
      "value": 1.0
    },
    {
      "name": "logits",
      "passed": null,
      "detail": "max|diff| 0.21 = 1.2e-02 of range 17.5; min cosine 0.98211",
      "value": 0.9821134
    },
    {
      "name": "chat_template",
      "passed": true,
      "detail": "renders a 4-turn chat identically (312 chars)",
      "value": null
    },
    {
      "name": "eos",
      "passed": true,
      "detail": "",
      "value": null
    }
  ]
}"""


def _gguf(tmp_path: Path) -> Path:
    gguf = tmp_path / "demo-Q8_0.gguf"
    # the record only has to be newer than the file it judges; bytes of its own, as verdicts are also kept per
    # content in the session's data dir (verify_identity.py), where another test's verdict would judge it
    gguf.write_bytes(b"GGUF" + str(tmp_path).encode())
    return gguf


def _write_after(gguf: Path, text: str) -> Path:
    """A record written after its GGUF (as the export writes it), so it is about this very file."""
    path = record_path(gguf)
    path.write_text(text, encoding="utf-8")
    stamp = gguf.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))
    return path


def test_a_record_the_export_writes_reads_back_equal(tmp_path: Path) -> None:
    gguf = _gguf(tmp_path)
    report = VerifyReport(gguf_path=str(gguf), hf_model_dir="/hf/model", quant="Q4_K_M", checks=[
        Check(name="tokenization", passed=True, detail="4 texts, identical token ids — 東京", value=0.0),
        Check(name="logits", passed=None, detail="reported for this quantization", value=0.9912),
        Check(name="eos", passed=False, detail="['<|im_end|>'] do not end generation in llama.cpp")])
    path = write_verify_record(gguf, report)
    assert path == record_path(gguf) == tmp_path / "demo-Q8_0.gguf.verify.json"
    stamp = gguf.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))
    back = read_verify_record(gguf)
    assert back == report
    assert back.passed is False and back.tokenization.passed is True
    assert [c.name for c in failed_checks(gguf)] == ["eos"]
    assert verify_status(gguf).label == "FAILED (eos)"


def test_the_written_record_has_the_layout_earlier_versions_wrote(tmp_path: Path) -> None:
    """Same keys, order, indent and null for an unmeasurable value as pydantic's dump: older ftwiz versions
    and users' scripts reading the record see no change."""
    report = VerifyReport.from_json(PYDANTIC_RECORD)
    assert report.to_json() == PYDANTIC_RECORD
    nan = VerifyReport(gguf_path="g", hf_model_dir="h", quant="F16",
                       checks=[Check(name="logits", passed=False, value=float("nan"))])
    assert json.loads(nan.to_json())["checks"][0]["value"] is None  # pydantic wrote NaN as null, never bare NaN


def test_a_record_written_by_the_pydantic_version_still_reads(tmp_path: Path) -> None:
    gguf = _gguf(tmp_path)
    _write_after(gguf, PYDANTIC_RECORD)
    report = read_verify_record(gguf)
    assert report is not None and report.quant == "Q8_0"
    assert report.tokenization == Check(name="tokenization", passed=False, detail=(
        "'  Indented line\nwith a new': first difference at token 7 (HF [2, 3], GGUF [4]) café"), value=1.0)
    assert report.logits.passed is None and report.logits.value == pytest.approx(0.9821134)
    assert report.passed is False
    status = verify_status(gguf)
    assert (status.state, status.label) == ("failed", "FAILED (tokenization)")


@pytest.mark.parametrize("damage", [
    PYDANTIC_RECORD.replace('"checks": [', '"checks": {"tokenization": [', 1).replace("\n  ]\n}", "\n  ]}\n}"),
    PYDANTIC_RECORD[:200],  # truncated: the disk filled up or the copy was cut
], ids=["checks-wrong-type", "truncated"])
def test_a_damaged_record_is_refused_naming_the_file(tmp_path: Path, damage: str) -> None:
    gguf = _gguf(tmp_path)
    path = _write_after(gguf, damage)
    with pytest.raises(FtwizError) as info:
        read_verify_record(gguf)
    assert info.value.where == str(path) and str(info.value).count(str(path)) == 1  # named once, by where
    assert "\n" not in info.value.what and "errors.pydantic.dev" not in info.value.what  # one line, no links
    if "\"checks\": {" in damage:
        assert "checks" in info.value.what  # the field that is wrong
    assert path.name in info.value.fix and "--verify" in info.value.fix
    assert verify_status(gguf).label == "record unreadable"  # models list shows it, does not crash


def test_the_export_step_imports_no_pydantic() -> None:
    """`ftwiz export` starts without pydantic: its step, preflight and record modules (and the events they emit)
    import none of it; only reading a record back does."""
    code = ("import sys\n"
            "import ftwiz.core.cli.export, ftwiz.core.export.export_step, ftwiz.core.export.preflight\n"
            "import ftwiz.core.export.verify_record\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
