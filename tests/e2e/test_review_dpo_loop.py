"""The loop from "this answer is bad" to a better model: SFT run -> `ftwiz eval --review` votes -> the saved
pairs -> a DPO recipe that continues the SFT adapter (`--from`) -> train -> export -> chat."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.events import read_events
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.runner import train

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.slow

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def test_review_votes_train_a_dpo_model_that_exports_and_chats(
        tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sft = train(parse_recipe({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
        "max_samples": 40, "cutoff_len": 128, "learning_rate": 2e-2, "max_steps": 4, "lora_rank": 8,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "warmup_ratio": 0.0,
        "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.2, "run_name": "loop-sft"}))
    assert sft.status == "completed"

    # "r": the reference answer beats both, so every differing sample becomes a pair (reference over tuned)
    monkeypatch.setattr("sys.stdin", io.StringIO("r\n" * 8))
    assert cli_main(["eval", "loop-sft", "--max-samples", "8", "--max-new-tokens", "12", "--review",
                     "--no-forgetting"]) == 0
    pairs_path = sft.run_dir / "eval" / "preferences.jsonl"
    pairs = [json.loads(line) for line in pairs_path.read_text().splitlines()]
    assert len(pairs) >= 1 and all(p["chosen"] != p["rejected"] for p in pairs)

    recipe_file = tmp_path / "dpo.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(pairs_path)], "stage": "dpo", "pref_beta": 0.1,
        "finetuning_type": "lora", "cutoff_len": 128, "learning_rate": 2e-2, "max_steps": 4, "lora_rank": 8,
        "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "warmup_ratio": 0.0,
        "near_dedup_threshold": None, "dedup": False, "val_size": 0.0, "test_size": 0.0, "lora_dropout": 0.0,
        "export_quant": ["F16"]}))
    assert cli_main(["train", str(recipe_file), "--from", "loop-sft", "--run-name", "loop-dpo"]) == 0
    dpo = RunDir.named("loop-dpo")
    stored = yaml.safe_load(dpo.recipe.read_text())
    assert stored["stage"] == "dpo" and stored["adapter_name_or_path"] == str(sft.run_dir / "adapter")
    steps = [e for e in read_events(dpo.events) if e.type == "step"]
    assert steps[-1].rewards_margins > steps[0].rewards_margins  # the voted-for answers gain on the others

    capsys.readouterr()
    assert cli_main(["export", "loop-dpo", "--quant", "F16"]) == 0
    gguf = next((dpo.root / "export").glob("*.gguf"))
    assert cli_main(["chat", str(gguf), "--once", pairs[0]["prompt"], "--max-tokens", "8",
                     "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip()
