"""``export_step``: a script calling the core export gets the lifecycle events the wizard reads (issue 22)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.events import EventBus, Failed, Finished
from ftwiz.core.export.export_step import export_step
from ftwiz.core.paths import runs_dir


def _run(tiny_qwen2: Path, name: str, state: str, with_model: bool = True) -> Path:
    run = runs_dir() / name
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    if with_model:
        shutil.copytree(tiny_qwen2, run / "model")
    (run / "recipe.yaml").write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: [demo]\nfinetuning_type: full\n")
    (run / "status.json").write_text(json.dumps({"state": state, "message": "CUDA out of memory"}))
    return run


def test_a_finished_export_emits_finished_with_the_gguf(tiny_qwen2: Path) -> None:
    run = _run(tiny_qwen2, "export-step-ok", "completed")
    seen: list = []
    result = export_step(run.name, ["Q8_0"], events=EventBus([seen.append]))
    assert result.gguf_paths == [str(run / "export" / "export-step-ok-Q8_0.gguf")]
    assert Path(result.gguf_paths[0]).is_file()
    finished = [e for e in seen if isinstance(e, Finished)]
    assert len(finished) == 1 and finished[0].status == "completed"
    assert finished[0].output_path == result.gguf_paths[0] and seen[-1] is finished[0]
    assert not any(isinstance(e, Failed) for e in seen)


def test_a_failed_run_emits_failed_with_its_reason_and_raises(tiny_qwen2: Path) -> None:
    run = _run(tiny_qwen2, "export-step-failed", "failed", with_model=False)
    seen: list = []
    with pytest.raises(FtwizError, match="the run failed: CUDA out of memory"):
        export_step(run.name, ["Q8_0"], events=EventBus([seen.append]))
    assert len(seen) == 1 and isinstance(seen[0], Failed)
    assert "CUDA out of memory" in seen[0].reason and "--resume export-step-failed" in seen[0].fix
    assert not (run / "export").exists()
