"""`packing: true` trains at micro-batch 2 (it crashed on position_ids before) and the loss falls."""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.events import EventBus
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.train.runner import train

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def test_packing_trains_at_micro_batch_2_with_falling_loss(tiny_qwen2: Path) -> None:
    recipe = parse_recipe({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
        "max_samples": 48, "cutoff_len": 256, "learning_rate": 2e-2, "max_steps": 6, "packing": True,
        "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "lora_rank": 8, "save_steps": 100,
        "eval_steps": 6, "warmup_ratio": 0.0, "lr_scheduler_type": "constant", "near_dedup_threshold": None,
        "val_size": 0.1, "test_size": 0.0, "lora_dropout": 0.0, "run_name": "packed"})
    seen = []
    result = train(recipe, events=EventBus([seen.append]))
    assert result.status == "completed"
    steps = [e for e in seen if e.type == "step"]
    assert min(s.loss for s in steps[1:]) < steps[0].loss, [s.loss for s in steps]
    evals = [e.loss for e in seen if e.type == "eval"]  # held-out answers, before and after
    assert len(evals) == 2 and evals[-1] < evals[0] * 0.97, evals
    stats = (result.run_dir / "data" / "stats.json").read_text()
    assert '"packed_sequences"' in stats
    assert (result.run_dir / "adapter" / "adapter_model.safetensors").is_file()
