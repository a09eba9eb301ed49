"""A GGUF whose `export --verify` failed is refused by register/chat/serve unless --force, and says so."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.deploy.modelfile import build_modelfile
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.verify import Check, VerifyReport
from ftwiz.core.export.verify_record import record_path, require_verified

OWN_TEMPLATE_CLAIM = "checked against the model's own chat template"


@pytest.fixture()
def gguf(shared_dir: Path, tmp_path: Path) -> Path:
    source = shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf"
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    path = tmp_path / "model-Q8_0.gguf"
    shutil.copyfile(source, path)
    return path


def _record(gguf: Path, *, tokenization_passed: bool) -> None:
    """The record `export --verify` writes, as export_model writes it (after the GGUF)."""
    report = VerifyReport(gguf_path=str(gguf), hf_model_dir="/hf/model", quant="Q8_0", checks=[
        Check(name="tokenization", passed=tokenization_passed, detail="ids differ in prompt 2 at token 5"),
        Check(name="logits", passed=True), Check(name="chat_template", passed=True), Check(name="eos", passed=True)])
    record_path(gguf).write_text(report.to_json())


def test_failed_verify_is_refused_naming_the_check_and_the_fix(gguf: Path) -> None:
    _record(gguf, tokenization_passed=False)
    with pytest.raises(FtwizError, match="tokenization") as info:
        build_modelfile(gguf)
    assert "--force" in info.value.fix and "export" in info.value.fix
    assert "ids differ in prompt 2" in info.value.what


def test_forced_modelfile_does_not_claim_the_check_that_failed(gguf: Path) -> None:
    _record(gguf, tokenization_passed=False)
    text = build_modelfile(gguf, force=True)
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert not any(OWN_TEMPLATE_CLAIM in line for line in header)
    assert any("FAILED" in line and "tokenization" in line for line in header)


def test_passed_or_unverified_gguf_keeps_working(gguf: Path) -> None:
    assert OWN_TEMPLATE_CLAIM in build_modelfile(gguf)  # never verified: as before
    _record(gguf, tokenization_passed=True)
    assert OWN_TEMPLATE_CLAIM in build_modelfile(gguf)


def test_a_record_older_than_the_gguf_is_not_about_it(gguf: Path) -> None:
    _record(gguf, tokenization_passed=False)
    stat = record_path(gguf).stat()
    os.utime(gguf, (stat.st_atime, stat.st_mtime + 10))  # GGUF written again later without --verify
    assert require_verified(gguf) == []


@pytest.mark.parametrize("argv", [["register", "{g}", "--modelfile", "{m}"], ["chat", "{g}", "--once", "hi"],
                                  ["serve", "{g}"]])
def test_cli_refuses_failed_gguf_with_a_clear_error(gguf: Path, argv: list[str], capsys) -> None:
    _record(gguf, tokenization_passed=False)
    modelfile = gguf.with_name("Modelfile")
    code = cli_main([a.format(g=gguf, m=modelfile) for a in argv])
    err = capsys.readouterr().err
    assert code != 0 and "export --verify" in err and "tokenization" in err and "--force" in err
    assert "Traceback" not in err and not modelfile.exists()


def test_register_force_writes_modelfile_and_json_reports_it(gguf: Path, capsys) -> None:
    _record(gguf, tokenization_passed=False)
    modelfile = gguf.with_name("Modelfile")
    assert cli_main(["register", str(gguf), "--modelfile", str(modelfile), "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["modelfile"] == str(modelfile.resolve()) and out["family"] == "phi3"
    assert "<|end|>" in out["stops"] and "tokenization" in out["verify_failed"]
    assert "FAILED" in modelfile.read_text()


def test_register_modelfile_keeps_an_existing_file_and_names_its_own_flag(gguf: Path, capsys) -> None:
    modelfile = gguf.with_name("Modelfile")
    modelfile.write_text("# my own notes\n")
    assert cli_main(["register", str(gguf), "--modelfile", str(modelfile)]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "already exists" in err and "--force" in err and "--overwrite" not in err  # register has no --overwrite
    assert modelfile.read_text() == "# my own notes\n"
    assert cli_main(["register", str(gguf), "--modelfile", str(modelfile), "--force"]) == 0
    assert "FROM " in modelfile.read_text()
