"""A tiny GPT-2 (Conv1D layers, learned positions, n_embd/n_layer config keys) plans and trains with LoRA.

`ftwiz plan` refused GPT-2-family folders ('config lacks hidden_size'); training through transformers and
peft always worked. Oracle for the count: transformers' model as saved; for LoRA: peft's trainable parameters.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from ftwiz.core.events import EventBus
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.runner import train

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def tiny_gpt2(out: Path) -> Path:
    """The tiny tokenizer ftwiz's demo uses, with a GPT-2 model of its vocabulary (2 blocks, 64 wide)."""
    import transformers
    from ftwiz.core.tiny.tokenizer import build_tokenizer

    tokenizer = build_tokenizer("chatml", vocab_size=512)
    config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, vocab_size=len(tokenizer),
                                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                     pad_token_id=tokenizer.pad_token_id)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_tiny_gpt2_plans_with_an_export_warning_and_trains_with_lora(tmp_path: Path) -> None:
    from ftwiz.core.planner import load_model_spec, plan_recipe
    from ftwiz.core.planner.estimator import lora_params
    from safetensors import safe_open

    model = tiny_gpt2(tmp_path / "gpt2")
    with safe_open(model / "model.safetensors", "pt") as f:
        names = f.keys()  # safe_open is no mapping: it has keys(), not iteration
        stored = sum(math.prod(f.get_slice(k).get_shape()) for k in names)
    spec = load_model_spec(model)
    assert spec.total_params == stored  # tied lm_head: saved once, as transformers loads it
    recipe = parse_recipe({"model_name_or_path": str(model), "dataset": [str(REPO / "recipes/demo/demo.jsonl")],
                           "finetuning_type": "lora", "max_samples": 24, "cutoff_len": 128, "max_steps": 3,
                           "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "lora_rank": 8,
                           "learning_rate": 1e-2, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
                           "template": "chatml", "run_name": "gpt2-lora"})
    plan = plan_recipe(recipe, vram_gb=8, spec=spec)
    assert plan.fits and any("cannot write GPT2LMHeadModel" in w for w in plan.warnings)
    seen = []
    result = train(recipe, events=EventBus([seen.append]))
    assert result.status == "completed"
    steps = [e.loss for e in seen if e.type == "step"]
    assert len(steps) == 3 and all(math.isfinite(loss) for loss in steps)
    # the adapter peft saved holds the LoRA parameters the plan counted (c_attn, attn/mlp c_proj, c_fc: Conv1D)
    with safe_open(RunDir(result.run_dir).adapter / "adapter_model.safetensors", "pt") as f:
        names = f.keys()
        assert sum(math.prod(f.get_slice(k).get_shape()) for k in names) == lora_params(spec, 8, ("all",))
