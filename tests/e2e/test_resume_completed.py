"""`ftwiz train --resume` of a run that already completed trains nothing and rewrites nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.events import parse_event
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.runner import train

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def tiny_recipe(model: Path, **fields):
    base = {"model_name_or_path": str(model), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
            "max_samples": 16, "cutoff_len": 64, "max_steps": 2, "per_device_train_batch_size": 4,
            "lora_rank": 4, "save_steps": 2, "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.0}
    return parse_recipe(base | fields)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def completed_run(tiny_qwen2: Path, request: pytest.FixtureRequest) -> RunDir:
    result = train(tiny_recipe(tiny_qwen2, run_name=f"done-{request.node.name[-12:].strip('_')}"))
    assert result.status == "completed"
    return RunDir(result.run_dir)


def test_cli_resume_of_a_completed_run_says_so_and_rewrites_nothing(completed_run: RunDir, capsys) -> None:
    before = _snapshot(completed_run.root)
    assert cli_main(["train", "--resume", completed_run.root.name]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "already complete" in err and "nothing was trained or rewritten" in err
    assert "Training completed" not in err
    assert f"adapter: {completed_run.adapter}" in err
    assert f"next: ftwiz export {completed_run.root} --quant" in err
    assert _snapshot(completed_run.root) == before  # adapter, events, status, checkpoints untouched


def test_resume_of_a_completed_run_with_events_on_stdout_ends_in_one_finished_event(completed_run: RunDir,
                                                                                     capsys) -> None:
    """What the wizard's train screen reads from its child: a final 'finished' event, so it shows done."""
    before = _snapshot(completed_run.root)
    assert cli_main(["train", "--resume", str(completed_run.root), "--events", "-"]) == 0
    captured = capsys.readouterr()
    events = [parse_event(json.loads(line)) for line in captured.out.splitlines() if line.strip()]
    assert [e.type for e in events] == ["finished"]
    assert events[0].status == "completed" and events[0].output_path == str(completed_run.adapter)
    assert "already complete" in captured.err
    assert _snapshot(completed_run.root) == before


def test_train_api_never_trains_over_a_completed_run(completed_run: RunDir, tiny_qwen2: Path) -> None:
    before = _snapshot(completed_run.root)
    result = train(tiny_recipe(tiny_qwen2), resume=completed_run.root.name)
    assert result.status == "completed" and result.summary["already_complete"]
    assert result.output_path == completed_run.adapter
    assert _snapshot(completed_run.root) == before
