"""``ftwiz models``: exported GGUFs from runs/ and the registry, with sizes, quant types and Ollama names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.deploy.models_rm import remove_model
from ftwiz.core.errors import FtwizError
from ftwiz.core.registry import find_model, list_models, record_export, record_ollama, registry_path


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture()
def run_gguf(isolated: Path, shared_dir: Path) -> Path:
    """A run directory with an exported GGUF (llama.cpp's Phi-3 vocab file stands in for the export)."""
    run = isolated / "runs" / "my-run"
    (run / "export").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\n")
    target = run / "export" / "my-run-F16.gguf"
    shutil.copy(shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf", target)
    return target


def test_runs_are_found_without_bookkeeping(run_gguf: Path) -> None:
    [entry] = list_models()
    assert entry.path == str(run_gguf.resolve())
    assert entry.source_run == "my-run" and entry.quant == "F16" and entry.size == run_gguf.stat().st_size
    assert not entry.in_registry and not registry_path().exists()  # listing never writes


def test_export_and_registration_are_remembered(run_gguf: Path, isolated: Path, shared_dir: Path) -> None:
    elsewhere = isolated / "elsewhere.gguf"
    shutil.copy(run_gguf, elsewhere)
    record_export(elsewhere, quant="Q8_0")
    record_ollama(run_gguf, "bot:v1", "http://127.0.0.1:11434")
    record_ollama(run_gguf, "bot:v1", "http://127.0.0.1:11434")  # idempotent
    entries = {Path(e.path).name: e for e in list_models()}
    assert entries["elsewhere.gguf"].quant == "Q8_0"
    assert [r.name for r in entries["my-run-F16.gguf"].ollama] == ["bot:v1"]
    assert find_model("bot").path == str(run_gguf.resolve())          # Ollama name without tag
    assert find_model("my-run").path == str(run_gguf.resolve())       # run name
    assert find_model(str(elsewhere)).quant == "Q8_0"                 # path
    data = json.loads(registry_path().read_text())
    assert data["version"] == 1 and len(data["models"]) == 2


def test_missing_file_is_flagged_and_rm_deletes(run_gguf: Path, isolated: Path) -> None:
    other = isolated / "gone.gguf"
    shutil.copy(run_gguf, other)
    record_export(other)
    other.unlink()
    gone = find_model("gone.gguf")
    assert not gone.exists
    assert remove_model(gone) == ["removed from the registry"]
    entry = find_model("my-run-F16.gguf")
    done = remove_model(entry, delete_file=True)
    assert done == [f"deleted {entry.path}"] and not run_gguf.exists()
    assert list_models() == []


def test_rm_without_delete_file_says_a_runs_gguf_stays_listed(run_gguf: Path, isolated: Path) -> None:
    """`models rm` said 'removed from the registry' and `models list` showed the run's GGUF as before."""
    record_export(run_gguf, quant="F16")
    done = remove_model(find_model("my-run-F16.gguf"))
    assert done[0] == "removed from the registry"
    assert "still listed" in done[1] and "my-run" in done[1] and "--delete-file" in done[1]
    assert [Path(e.path).name for e in list_models()] == ["my-run-F16.gguf"] and run_gguf.exists()


def test_unknown_and_corrupt_registry_are_user_errors(isolated: Path) -> None:
    with pytest.raises(FtwizError, match="no exported model matches"):
        find_model("nothing")
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text("{ not json")
    with pytest.raises(FtwizError, match="not valid JSON") as info:
        list_models()
    assert str(registry_path()) in str(info.value.where)


def test_cli_models(run_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    assert main(["models", "list", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["source_run"] == "my-run" and entry["quant"] == "F16"
    assert main(["models", "show", "my-run"]) == 0
    assert "F16" in capsys.readouterr().out
    assert main(["models", "show", "nope"]) == 2
    assert main(["models", "rm", "my-run", "--delete-file"]) == 0
    assert not run_gguf.exists()
