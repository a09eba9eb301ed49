"""Training stages on tiny models, on CPU: dpo, orpo and kto move the preference figures the right way, pt
learns raw text; all with the run directory, events and adapter that SFT has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.events import EventBus, read_events
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.callbacks import TEST_OOM_ENV, CancelFlag
from ftwiz.core.train.runner import train

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def pairs_file(tmp_path: Path, shape: str = "prompt") -> Path:
    """Preference pairs from the demo data: the pirate answer is chosen over a plain one."""
    rows = []
    for line in DEMO_DATA.read_text().splitlines()[:40]:
        messages = json.loads(line)["messages"]
        question, answer = messages[-2]["content"], messages[-1]["content"]
        plain = "I do not know much about that, sorry."
        if shape == "prompt":
            rows.append({"prompt": question, "chosen": answer, "rejected": plain})
        elif shape == "sharegpt":
            rows.append({"conversations": [{"from": "human", "value": question}],
                         "chosen": {"from": "gpt", "value": answer}, "rejected": {"from": "gpt", "value": plain}})
    path = tmp_path / f"pairs-{shape}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def stage_recipe(model: Path, data: Path, **fields):
    base = {"model_name_or_path": str(model), "dataset": [str(data)], "finetuning_type": "lora",
            "cutoff_len": 128, "learning_rate": 2e-2, "max_steps": 6, "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1, "lora_rank": 8, "save_steps": 3, "eval_steps": 100,
            "warmup_ratio": 0.0, "lr_scheduler_type": "constant", "near_dedup_threshold": None,
            "val_size": 0.1, "test_size": 0.0, "lora_dropout": 0.0}
    return parse_recipe(base | fields)


def _steps(seen):
    return [e for e in seen if e.type == "step"]


def exports_and_chats(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The stage's adapter goes through the same export and chat as an SFT run's."""
    from ftwiz.core.cli import main as cli_main

    capsys.readouterr()
    assert cli_main(["export", run_dir.name, "--quant", "F16"]) == 0
    gguf = next((run_dir / "export").glob("*.gguf"))
    assert cli_main(["chat", str(gguf), "--once", "Why is the sea salty?", "--max-tokens", "8",
                     "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize(("shape", "method"), [("prompt", "lora"), ("sharegpt", "qlora")])
def test_dpo_widens_the_reward_margin(tiny_qwen2: Path, tmp_path: Path, shape: str, method: str) -> None:
    seen = []
    result = train(stage_recipe(tiny_qwen2, pairs_file(tmp_path, shape), stage="dpo", run_name=f"dpo-{shape}",
                                finetuning_type=method), events=EventBus([seen.append]))
    assert result.status == "completed"
    steps = _steps(seen)
    assert steps[0].rewards_margins is not None and steps[0].rewards_accuracy is not None
    assert steps[-1].rewards_margins > steps[0].rewards_margins + 0.05, [s.rewards_margins for s in steps]
    assert steps[-1].rewards_chosen > steps[-1].rewards_rejected
    assert steps[-1].loss < steps[0].loss
    run = RunDir(result.run_dir)
    assert (run.adapter / "adapter_model.safetensors").is_file()
    assert not (run.adapter / "ref").exists()  # only the trained adapter is saved
    logged = [e for e in read_events(run.events) if e.type == "step"]
    assert logged[-1].rewards_margins == pytest.approx(steps[-1].rewards_margins)


def test_preference_stage_refuses_data_without_pairs(tiny_qwen2: Path) -> None:
    with pytest.raises(FtwizError, match="no chosen/rejected") as caught:
        train(stage_recipe(tiny_qwen2, DEMO_DATA, stage="dpo", run_name="dpo-sft-data", max_samples=8))
    assert caught.value.where == "recipe: stage"


def test_orpo_learns_the_chosen_answers_without_a_reference(tiny_qwen2: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    seen = []
    result = train(stage_recipe(tiny_qwen2, pairs_file(tmp_path), stage="orpo", run_name="orpo"),
                   events=EventBus([seen.append]))
    assert result.status == "completed"
    steps = _steps(seen)
    assert steps[-1].loss < steps[0].loss * 0.97, [s.loss for s in steps]  # the SFT part: chosen answers learned
    assert steps[-1].rewards_margins > steps[0].rewards_margins, [s.rewards_margins for s in steps]
    assert steps[-1].rewards_accuracy == 1.0
    exports_and_chats(result.run_dir, capsys)


def test_kto_raises_desirable_and_lowers_undesirable_rewards(tiny_qwen2: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    seen = []
    result = train(stage_recipe(tiny_qwen2, pairs_file(tmp_path), stage="kto", run_name="kto"),
                   events=EventBus([seen.append]))
    assert result.status == "completed"
    steps = _steps(seen)
    assert steps[0].loss == pytest.approx(0.5, abs=1e-3)  # policy == reference at the start
    assert steps[-1].loss < steps[0].loss
    assert steps[-1].rewards_chosen > 0 > steps[-1].rewards_rejected
    assert steps[-1].rewards_margins > steps[0].rewards_margins + 0.05
    exports_and_chats(result.run_dir, capsys)


def test_pt_packs_raw_text_and_learns_it(tiny_qwen2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "corpus.jsonl"
    answers = [json.loads(line)["messages"][-1]["content"] for line in DEMO_DATA.read_text().splitlines()[:48]]
    text.write_text("\n".join(json.dumps({"text": a}) for a in answers) + "\n")
    seen = []
    result = train(stage_recipe(tiny_qwen2, text, stage="pt", run_name="pt", per_device_train_batch_size=2,
                                max_steps=10, eval_steps=10, learning_rate=5e-2), events=EventBus([seen.append]))
    assert result.status == "completed"
    evals = [e.loss for e in seen if e.type == "eval"]  # held-out text, measured before and after
    assert len(evals) == 2 and evals[-1] < evals[0] * 0.97, evals
    stats = json.loads((result.run_dir / "data" / "stats.json").read_text())
    assert stats["train"]["packed_sequences"] < stats["train"]["samples"]  # several texts per sequence
    exports_and_chats(result.run_dir, capsys)


def test_pt_refuses_conversations(tiny_qwen2: Path) -> None:
    with pytest.raises(FtwizError, match="raw text") as caught:
        train(stage_recipe(tiny_qwen2, DEMO_DATA, stage="pt", run_name="pt-chat", max_samples=8))
    assert caught.value.where == "recipe: stage"


def test_dpo_cancel_then_resume_reproduces_the_uninterrupted_curve(tiny_qwen2: Path, tmp_path: Path) -> None:
    data = pairs_file(tmp_path)
    straight = train(stage_recipe(tiny_qwen2, data, stage="dpo", run_name="dpo-straight"))
    cancel = CancelFlag()

    def cancel_at_step_3(event) -> None:
        if event.type == "step" and event.step == 3:
            cancel.set("SIGINT")

    first = train(stage_recipe(tiny_qwen2, data, stage="dpo", run_name="dpo-resumed"),
                  events=EventBus([cancel_at_step_3]), cancel=cancel)
    assert first.status == "cancelled" and RunDir(first.run_dir).checkpoint_steps()[-1] == 3
    resumed = train(stage_recipe(tiny_qwen2, data, stage="dpo", run_name="dpo-resumed"))
    assert resumed.status == "completed"

    def curve(run_dir: Path) -> dict[int, tuple[float, float]]:
        return {e.step: (e.loss, e.rewards_margins) for e in read_events(run_dir / "events.jsonl") if e.type == "step"}

    expected, got = curve(straight.run_dir), curve(resumed.run_dir)
    assert sorted(got) == sorted(expected)
    for step, (loss, margin) in expected.items():
        assert got[step][0] == pytest.approx(loss, rel=1e-3, abs=1e-5), step
        assert got[step][1] == pytest.approx(margin, rel=1e-3, abs=1e-5), step


def test_dpo_out_of_memory_halves_the_micro_batch(tiny_qwen2: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_OOM_ENV, "2")
    seen = []
    result = train(stage_recipe(tiny_qwen2, pairs_file(tmp_path), stage="dpo", run_name="dpo-oom", max_steps=2),
                   events=EventBus([seen.append]))
    assert result.status == "completed"
    assert [(b.old_micro_batch, b.new_micro_batch, b.new_grad_accum) for b in seen if b.type == "backoff"] \
        == [(4, 2, 2)]
    assert [e.rewards_margins is not None for e in _steps(seen)] == [True, True]


@pytest.mark.slow
def test_dpo_sigkill_then_resume_over_the_event_stream(tiny_qwen2: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    import yaml
    from ftwiz.core.events import parse_event

    recipe_file = tmp_path / "dpo.yaml"
    recipe_file.write_text(yaml.safe_dump(stage_recipe(tiny_qwen2, pairs_file(tmp_path), stage="dpo",
                                                       run_name="dpo-killed", max_steps=8, save_steps=2)
                                          .model_dump(mode="json")))
    cmd = [sys.executable, "-m", "ftwiz.tui.launcher_main", "train", str(recipe_file), "--events", "-"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    for line in child.stdout:
        event = parse_event(line)  # stdout carries nothing but events, TRL's logs included
        if event.type == "checkpoint" and event.step >= 4:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    done = subprocess.run([sys.executable, "-m", "ftwiz.tui.launcher_main", "train", "--resume", "dpo-killed",
                           "--events", "-"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    events = [parse_event(line) for line in done.stdout.splitlines()]
    assert [e for e in events if e.type == "started"][0].resumed_from_step >= 4
    steps = [e for e in events if e.type == "step"]
    assert steps and all(s.rewards_margins is not None for s in steps)
    assert events[-1].type == "finished" and events[-1].status == "completed"
