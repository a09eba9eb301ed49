"""A run resolves to its own fine-tuned export, never to the base-model copy made for comparing (issue 17.1).

The run folder here holds what a user's ``runs/demo`` holds after training, exporting twice and pressing
Ctrl+B in the wizard's chat: fine-tuned GGUFs in export/, a base copy (new location base/, old location
export/base-Q8_0.gguf), and a LoRA adapter GGUF. Every verb that takes a run must pick the fine-tune.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.rundir import RunCard, RunDir, next_free_run_name

CLI = [sys.executable, "-m", "ftwiz.tui.launcher_main"]


def _touch(path: Path, when: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + path.name.encode())
    os.utime(path, (when, when))
    return path


@pytest.fixture()
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "runs"


@pytest.fixture()
def demo_run(runs: Path, tmp_path: Path) -> Path:
    run = runs / "demo"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\nollama_name: ftwiz-demo\n")
    (tmp_path / "base-model").mkdir()
    (run / "run_card.json").write_text(json.dumps({
        "run_name": "demo", "base_model": str(tmp_path / "base-model"), "base_model_name": "demo",
        "base_model_revision": None, "method": "lora", "template_hash": "abc123", "future_field": 1}))
    (run / "status.json").write_text(json.dumps({"state": "completed"}))
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text("{}")
    _touch(run / "export" / "demo-Q8_0.gguf", 1_000)
    _touch(run / "export" / "demo-Q4_K_M.gguf", 2_000)
    _touch(run / "export" / "base-Q8_0.gguf", 3_000)       # where older versions put the base copy
    _touch(run / "base" / "base-Q8_0.gguf", 4_000)         # where the wizard's Ctrl+B puts it now
    _touch(run / "export" / "demo-lora-F32.gguf", 5_000)   # export --adapter-only
    _touch(run / "export" / ".demo-F16.intermediate.gguf", 6_000)
    return run


def test_a_run_resolves_to_its_newest_fine_tuned_export_never_its_base_copy(demo_run: Path) -> None:
    run = RunDir.resolve("demo")
    assert run.latest_gguf() == (demo_run / "export" / "demo-Q4_K_M.gguf").resolve()
    assert run.latest_gguf("q8_0") == (demo_run / "export" / "demo-Q8_0.gguf").resolve()
    assert run.latest_gguf("F16") is None
    assert set(run.exports_by_quant()) == {"Q8_0", "Q4_K_M"}
    roles = {e.path.name: e.role for e in run.exports()}
    assert roles == {"demo-Q8_0.gguf": "fine-tuned", "demo-Q4_K_M.gguf": "fine-tuned", "base-Q8_0.gguf": "base",
                     "demo-lora-F32.gguf": "adapter"}
    assert run.existing_base_gguf() == demo_run / "base" / "base-Q8_0.gguf"
    assert run.stage() == "exported" and run.method() == "lora"
    with pytest.raises(FtwizError, match="no F16 GGUF") as info:
        run.require_gguf("F16")
    assert "ftwiz export demo --quant F16" in info.value.fix


def test_chat_serve_and_register_take_the_fine_tune_of_a_run(demo_run: Path) -> None:
    from ftwiz.core.deploy.chat import resolve_chat_model

    for given in ("demo", str(demo_run)):
        ref = resolve_chat_model(given)
        assert Path(ref.target).name == "demo-Q4_K_M.gguf" and ref.run_dir == str(demo_run.resolve())


def test_a_run_named_like_an_adapter_still_resolves_to_its_fine_tuned_export(runs: Path) -> None:
    """A run called 'nu-lora' exports nu-lora-Q8_0.gguf: its model, not an adapter (register/chat found none)."""
    run = runs / "nu-lora"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n")
    (run / "status.json").write_text(json.dumps({"state": "completed"}))
    _touch(run / "export" / "nu-lora-Q8_0.gguf", 1_000)
    _touch(run / "export" / "nu-lora-lora-F32.gguf", 2_000)  # export --adapter-only of the same run
    roles = {e.path.name: e.role for e in RunDir.resolve("nu-lora").exports()}
    assert roles == {"nu-lora-Q8_0.gguf": "fine-tuned", "nu-lora-lora-F32.gguf": "adapter"}
    assert RunDir.resolve("nu-lora").require_gguf() == (run / "export" / "nu-lora-Q8_0.gguf").resolve()


def test_the_run_card_is_typed_and_keeps_fields_it_does_not_know(demo_run: Path) -> None:
    card = RunDir.resolve("demo").card()
    assert isinstance(card, RunCard) and card.base_model_name == "demo" and card.template_hash == "abc123"
    assert card.model_dump()["future_field"] == 1
    assert RunDir.resolve("demo").base_model_dir() == demo_run.parent.parent / "base-model"
    (demo_run / "run_card.json").write_text(json.dumps({"method": ["lora"]}))
    with pytest.raises(FtwizError, match="run card of 'demo' is damaged") as info:
        RunDir.resolve("demo").card()
    assert "method" in str(info.value.where)


def test_models_list_labels_the_base_copy_and_a_run_name_means_the_fine_tune(demo_run: Path, runs: Path) -> None:
    from ftwiz.core.registry import find_model

    assert find_model("demo").path == str((demo_run / "export" / "demo-Q4_K_M.gguf").resolve())
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    out = subprocess.run([*CLI, "models", "list"], capture_output=True, text=True, env=env, check=True).stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert "demo (base)" in rows["base-Q8_0.gguf"] and "demo (adapter)" in rows["demo-lora-F32.gguf"]
    assert "demo (" not in rows["demo-Q8_0.gguf"].split("│")[4]
    assert ".intermediate" not in out
    # the full path of the base copy is printed, not cut with an ellipsis
    assert str((demo_run / "base" / "base-Q8_0.gguf").resolve()) in out.replace("\n", "").replace("│", "")


def test_next_free_run_name(runs: Path) -> None:
    (runs / "demo").mkdir(parents=True)
    (runs / "demo-2").mkdir()
    assert next_free_run_name("demo") == "demo-3" and next_free_run_name("other") == "other"


@pytest.mark.parametrize(("state", "says"), [
    ("cancelled", "resume it with `ftwiz train --resume demo`"),
    ("failed", "the run failed: out of memory at step 3"),
])
def test_export_and_eval_of_an_unfinished_run_say_what_to_do(runs: Path, state: str, says: str) -> None:
    run = runs / "demo"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n")
    (run / "status.json").write_text(json.dumps({"state": state, "message": "out of memory at step 3"}))
    for verb in (["export", "demo"], ["eval", "demo"]):
        result = subprocess.run([*CLI, *verb], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        assert result.returncode == 2, result.stderr
        assert says in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr
