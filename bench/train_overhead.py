"""Tokens/s of `ftwiz train` against a plain transformers Trainer + peft script, same settings, same process.

Run: python bench/train_overhead.py [--steps 40] [--rounds 3]
Both sides train the same small random-init Llama-style model on the demo dataset with identical
TrainingArguments (LoRA r=16 on all linears, micro-batch 8, no eval, no checkpoints inside the window).
Throughput is measured the same way on both sides: the median over logged steps of non-padding tokens
trained per second of wall time (a median, so one stall of a shared machine does not decide the result). Rounds alternate the order (ftwiz first, then
baseline first) to cancel drift; the printed ratio is the median over rounds. Target: >= 0.97.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "recipes" / "demo" / "demo.jsonl"


def recipe_for(model_dir: Path, steps: int, name: str):
    from ftwiz.core.recipe import parse_recipe

    return parse_recipe({
        "model_name_or_path": str(model_dir), "dataset": [str(DATA)], "finetuning_type": "lora",
        "lora_rank": 16, "cutoff_len": 128, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
        "gradient_checkpointing": False, "learning_rate": 1e-3, "max_steps": steps, "save_steps": 10_000,
        "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None, "lora_dropout": 0.0,
        "warmup_ratio": 0.0, "lr_scheduler_type": "constant", "run_name": name, "logging_steps": 1,
    })


def ftwiz_tokens_per_s(model_dir: Path, steps: int, name: str) -> float:
    from ftwiz.core.events import EventBus
    from ftwiz.core.train.runner import train

    steps_seen = []
    train(recipe_for(model_dir, steps, name), events=EventBus([lambda e: e.type == "step" and steps_seen.append(e)]))
    return _median_rate([(e.time, e.tokens_seen) for e in steps_seen])


def baseline_tokens_per_s(model_dir: Path, steps: int, out: Path) -> float:
    """What a user would write by hand: tokenizer, peft LoRA, Trainer, the same data and arguments."""
    import torch
    import transformers
    from ftwiz.core.data import prepare_for_training
    from peft import LoraConfig, get_peft_model

    recipe = recipe_for(model_dir, steps, "baseline")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    data = prepare_for_training(recipe, tokenizer).train.select_columns(["input_ids", "attention_mask", "labels"])
    transformers.set_seed(recipe.seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    marks: list[tuple[float, int]] = []

    class Timing(transformers.TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                marks.append((time.time(), state.num_input_tokens_seen))

    args = transformers.TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=8, gradient_accumulation_steps=1, learning_rate=1e-3,
        max_steps=steps, lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, seed=recipe.seed, data_seed=recipe.seed, remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding", disable_tqdm=True, dataloader_num_workers=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[Timing()],
                                   data_collator=transformers.DataCollatorForSeq2Seq(tokenizer, padding=True))
    trainer.train()
    return _median_rate(marks)


def _median_rate(marks: list[tuple[float, int]]) -> float:
    """Median tokens/s over the logged intervals: robust to a stray pause of a shared machine."""
    rates = [(n1 - n0) / (t1 - t0) for (t0, n0), (t1, n1) in zip(marks, marks[1:], strict=False) if t1 > t0]
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ftwiz-bench-"))
    os.environ.setdefault("FTWIZ_RUNS_DIR", str(work / "runs"))
    os.environ.setdefault("FTWIZ_CACHE_DIR", str(work / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ftwiz.core.tiny import build_tiny_model

    model_dir = build_tiny_model(work / "model", arch="llama", hidden_size=256, num_layers=4, num_heads=8,
                                 num_kv_heads=4)
    ratios = []
    for round_ in range(args.rounds):
        order = ("ftwiz", "baseline") if round_ % 2 == 0 else ("baseline", "ftwiz")
        rates = {}
        for side in order:
            if side == "ftwiz":
                rates[side] = ftwiz_tokens_per_s(model_dir, args.steps, f"bench-{round_}")
            else:
                rates[side] = baseline_tokens_per_s(model_dir, args.steps, work / f"baseline-{round_}")
        ratio = rates["ftwiz"] / rates["baseline"]
        ratios.append(ratio)
        print(f"round {round_ + 1}: ftwiz {rates['ftwiz']:8.0f} tok/s   baseline {rates['baseline']:8.0f} tok/s   "
              f"ratio {ratio:.3f}", flush=True)
    median = statistics.median(ratios)
    print(f"median ratio ftwiz / plain Trainer+peft: {median:.3f} (target >= 0.97): "
          f"{'met' if median >= 0.97 else 'NOT met'}")
    return 0 if median >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
