"""`ftwiz train` on tiny models, on CPU: each method learns, events are typed, cancel/resume/kill/back-off work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.errors import FtwizError
from ftwiz.core.events import EventBus, parse_event, read_events
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.callbacks import TEST_OOM_ENV, CancelFlag
from ftwiz.core.train.runner import train

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "recipes" / "demo" / "demo.jsonl"


def tiny_recipe(model: Path, **fields):
    base = {"model_name_or_path": str(model), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
            "max_samples": 48, "cutoff_len": 128, "learning_rate": 3e-3, "max_steps": 8,
            "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "lora_rank": 8,
            "save_steps": 2, "eval_steps": 4, "warmup_ratio": 0.0, "lr_scheduler_type": "constant",
            "near_dedup_threshold": None, "val_size": 0.1, "test_size": 0.0, "lora_dropout": 0.0}
    return parse_recipe(base | fields)


def losses(run_dir: Path) -> dict[int, float]:
    return {e.step: e.loss for e in read_events(run_dir / "events.jsonl") if e.type == "step"}


@pytest.mark.parametrize("method", ["lora", "qlora", "full"])
def test_each_method_trains_with_falling_loss(tiny_qwen2: Path, method: str) -> None:
    seen = []
    result = train(tiny_recipe(tiny_qwen2, finetuning_type=method, run_name=f"m-{method}",
                               learning_rate=2e-2 if method != "full" else 3e-3),
                   events=EventBus([seen.append]))
    assert result.status == "completed"
    steps = [e for e in seen if e.type == "step"]
    assert steps[-1].loss < steps[0].loss * 0.95, [s.loss for s in steps]
    assert steps[-1].tokens_per_s and steps[-1].rss_bytes and steps[-1].lr > 0
    run = RunDir(result.run_dir)
    assert run.state() == "completed"
    output = run.model if method == "full" else run.adapter
    weights = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    assert (output / weights).is_file() and (output / "tokenizer_config.json").is_file()
    card = json.loads(run.run_card.read_text())
    assert card["method"] == method and card["base_model"] == str(tiny_qwen2.resolve())
    assert card["dataset_hash"] and card["template_hash"] and card["versions"]["torch"]
    assert [e.type for e in seen][-1] == "finished"
    if method == "qlora":
        adapter_config = json.loads((output / "adapter_config.json").read_text())
        assert adapter_config["r"] == 8


def test_events_file_matches_the_schema_and_tells_the_whole_story(tiny_qwen2: Path) -> None:
    result = train(tiny_recipe(tiny_qwen2, run_name="events"))
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [parse_event(e).type for e in events]  # every line validates against the typed schema
    assert kinds[0] in ("progress", "message") and "started" in kinds and kinds[-1] == "finished"
    assert kinds.count("checkpoint") == 4 and kinds.count("eval") >= 3  # save every 2, eval every 4 + start
    evals = [e["loss"] for e in events if e["type"] == "eval"]
    assert evals[-1] < evals[0]  # eval loss falls from the measured starting point
    assert len(RunDir(result.run_dir).checkpoint_steps()) == 3  # save_total_limit keeps the last 3


def test_cancel_then_resume_reproduces_the_uninterrupted_loss_curve(tiny_qwen2: Path) -> None:
    straight = train(tiny_recipe(tiny_qwen2, run_name="straight"))
    cancel = CancelFlag()

    def cancel_at_step_3(event) -> None:
        if event.type == "step" and event.step == 3:
            cancel.set("SIGINT")

    first = train(tiny_recipe(tiny_qwen2, run_name="interrupted"), events=EventBus([cancel_at_step_3]),
                  cancel=cancel)
    assert first.status == "cancelled"
    run = RunDir(first.run_dir)
    assert run.state() == "cancelled" and run.checkpoint_steps()[-1] == 3
    resumed = train(tiny_recipe(tiny_qwen2, run_name="interrupted"))
    assert resumed.status == "completed"
    started = [e for e in read_events(run.events) if e.type == "started"]
    assert started[-1].resumed_from_step == 3
    expected, got = losses(straight.run_dir), losses(resumed.run_dir)
    assert sorted(got) == sorted(expected)
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-3), step


def test_resume_refuses_when_the_data_changed(tiny_qwen2: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(DEMO_DATA.read_text())
    cancel = CancelFlag()
    cancel.set("SIGTERM")  # cancelled before the first step: the run exists, nothing trained yet
    train(tiny_recipe(tiny_qwen2, run_name="changed", dataset=[str(data)]), cancel=cancel)
    data.write_text(DEMO_DATA.read_text().replace("matey", "friend"))
    with pytest.raises(FtwizError, match="dataset changed"):
        train(tiny_recipe(tiny_qwen2, run_name="changed", dataset=[str(data)]))
    with pytest.raises(FtwizError, match="recipe's training settings changed"):
        data.write_text(DEMO_DATA.read_text())
        train(tiny_recipe(tiny_qwen2, run_name="changed", dataset=[str(data)], learning_rate=1e-4))


def test_completed_run_is_never_trained_over(tiny_qwen2: Path) -> None:
    train(tiny_recipe(tiny_qwen2, run_name="done", max_steps=2))
    with pytest.raises(FtwizError, match="already completed"):
        train(tiny_recipe(tiny_qwen2, run_name="done", max_steps=2))


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(
        tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_OOM_ENV, "1")
    seen = []
    result = train(tiny_recipe(tiny_qwen2, run_name="oom", max_steps=3), events=EventBus([seen.append]))
    backoffs = [e for e in seen if e.type == "backoff"]
    assert [(b.old_micro_batch, b.new_micro_batch, b.new_grad_accum) for b in backoffs] == [(4, 2, 2), (2, 1, 4)]
    assert result.status == "completed"
    plan = json.loads((result.run_dir / "plan.json").read_text())
    assert (plan["micro_batch"], plan["grad_accum"]) == (1, 4)


def test_out_of_memory_at_micro_batch_1_gives_up_with_suggestions(
        tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv(TEST_OOM_ENV, "0")
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe(tiny_qwen2, run_name="oom1", per_device_train_batch_size=1)
                                          .model_dump(mode="json")))
    assert cli_main(["train", str(recipe_file)]) == 2
    err = capsys.readouterr().err
    assert "out of memory even at micro-batch 1" in err and "qlora" in err
    run = RunDir.named("oom1")
    assert run.state() == "failed"
    assert [e.type for e in read_events(run.events)][-1] == "failed"


def test_failing_run_exits_non_zero_and_never_claims_success(
        tiny_qwen2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "", "output": ""}\nnot json\n')
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe(tiny_qwen2, run_name="bad", dataset=[str(bad)])
                                          .model_dump(mode="json")))
    assert cli_main(["train", str(recipe_file)]) == 2
    captured = capsys.readouterr()
    assert "no usable records" in captured.err and "completed" not in captured.out + captured.err
    failed = [e for e in read_events(RunDir.named("bad").events) if e.type == "failed"]
    assert failed and "ftwiz data check" in failed[0].fix


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_the_last_checkpoint(tiny_qwen2: Path, tmp_path: Path) -> None:
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe(tiny_qwen2, run_name="killed", max_steps=12, save_steps=2,
                                                      eval_steps=20).model_dump(mode="json")))
    cmd = [sys.executable, "-m", "ftwiz.tui.launcher_main", "train", str(recipe_file), "--events", "-"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    kinds = []
    for line in child.stdout:
        event = parse_event(line)  # stdout carries nothing but events
        kinds.append(event.type)
        if event.type == "checkpoint" and event.step >= 4:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    run = RunDir.named("killed")
    assert run.state() == "running"  # what a killed process leaves behind
    done = subprocess.run([sys.executable, "-m", "ftwiz.tui.launcher_main", "train", "--resume", "killed",
                           "--events", "-"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    events = [parse_event(line) for line in done.stdout.splitlines()]
    started = [e for e in events if e.type == "started"][0]
    assert started.resumed_from_step >= 4
    assert events[-1].type == "finished" and events[-1].status == "completed"
    assert run.state() == "completed"


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_exits_130(tiny_qwen2: Path, tmp_path: Path) -> None:
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe(tiny_qwen2, run_name="sigint", max_steps=400, save_steps=1000,
                                                      eval_steps=1000).model_dump(mode="json")))
    child = subprocess.Popen([sys.executable, "-m", "ftwiz.tui.launcher_main", "train", str(recipe_file),
                              "--events", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if parse_event(line).type == "step":
            child.send_signal(signal.SIGINT)
            break
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    last = parse_event(out.splitlines()[-1])
    assert last.type == "finished" and last.status == "cancelled" and "--resume sigint" in last.summary["message"]
    run = RunDir.named("sigint")
    assert run.state() == "cancelled" and run.checkpoint_steps()


def test_cli_shows_progress_and_a_final_summary(tiny_qwen2: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab_cache import cache_key, lookup

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))  # empty: only this run can fill it
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe(tiny_qwen2, run_name="cli", max_steps=4)
                                          .model_dump(mode="json")))
    assert cli_main(["train", str(recipe_file)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "Training completed" in err and "eval loss" in err and "next: ftwiz export" in err
    assert "tok/s" in err or "tokens/s" in err
    # the first export of this run finds the vocabulary parsed: the tokenizer saved with the adapter, at the
    # base model's rows (the merge copies tokenizer.json byte for byte)
    adapter = RunDir.named("cli").adapter
    assert lookup(cache_key(adapter, model_params(tiny_qwen2).vocab_size)) is not None


def test_cli_resume_of_an_unknown_run_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["train", "--resume", "no-such-run"]) == 2
    assert "no ftwiz run found at 'no-such-run'" in capsys.readouterr().err
