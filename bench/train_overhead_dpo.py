"""The DPO row of the train-overhead bench: `ftwiz train` (stage: dpo) against a plain TRL DPOTrainer script.

Run: python bench/train_overhead_dpo.py [--steps 30] [--rounds 3]
Same model as bench/train_overhead.py (small random-init Llama), preference pairs built from the demo data
(the demo answer chosen over a plain one), LoRA r=16 on all linears, micro-batch 8, beta 0.1, sigmoid loss,
no eval or checkpoints inside the window. Both sides' reference is the adapter-disabled base. Throughput:
the median over logged steps of non-padding tokens per second of wall time; rounds alternate the order.
Target: >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_overhead import DATA, _median_rate  # noqa: E402


def pairs_file(work: Path) -> Path:
    path = work / "pairs.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for line in DATA.read_text(encoding="utf-8").splitlines():
            messages = json.loads(line)["messages"]
            out.write(json.dumps({"prompt": messages[-2]["content"], "chosen": messages[-1]["content"],
                                  "rejected": "I do not know much about that, sorry."}) + "\n")
    return path


def recipe_for(model_dir: Path, pairs: Path, steps: int, name: str):
    from ftwiz.core.recipe import parse_recipe

    return parse_recipe({
        "model_name_or_path": str(model_dir), "dataset": [str(pairs)], "stage": "dpo", "pref_beta": 0.1,
        "finetuning_type": "lora", "lora_rank": 16, "cutoff_len": 128, "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1, "gradient_checkpointing": False, "learning_rate": 1e-4,
        "max_steps": steps, "save_steps": 10_000, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
        "lora_dropout": 0.0, "warmup_ratio": 0.0, "lr_scheduler_type": "constant", "run_name": name,
        "logging_steps": 1})


def ftwiz_tokens_per_s(model_dir: Path, pairs: Path, steps: int, name: str) -> float:
    from ftwiz.core.events import EventBus
    from ftwiz.core.train.runner import train

    seen = []
    train(recipe_for(model_dir, pairs, steps, name), events=EventBus([lambda e: e.type == "step" and seen.append(e)]))
    return _median_rate([(e.time, e.tokens_seen) for e in seen])


def baseline_tokens_per_s(model_dir: Path, pairs: Path, steps: int, out: Path) -> float:
    """What a user would write by hand with TRL: the pairs, peft LoRA, DPOTrainer, the same arguments."""
    import torch
    import transformers
    from datasets import load_dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    raw = load_dataset("json", data_files=str(pairs), split="train")
    data = raw.map(lambda r: {"prompt": [{"role": "user", "content": r["prompt"]}],
                              "chosen": [{"role": "assistant", "content": r["chosen"]}],
                              "rejected": [{"role": "assistant", "content": r["rejected"]}]})
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    marks: list[tuple[float, int]] = []

    class Timing(transformers.TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                marks.append((time.time(), state.num_input_tokens_seen))

    args = DPOConfig(output_dir=str(out), per_device_train_batch_size=8, gradient_accumulation_steps=1,
                     learning_rate=1e-4, max_steps=steps, lr_scheduler_type="constant", logging_steps=1,
                     save_strategy="no", report_to=[], use_cpu=True, seed=42, data_seed=42, beta=0.1,
                     max_length=128, include_num_input_tokens_seen="non_padding", disable_tqdm=True,
                     dataloader_num_workers=0, gradient_checkpointing=False, bf16=False)
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         callbacks=[Timing()], peft_config=LoraConfig(
                             r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainer.train()
    return _median_rate(marks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ftwiz-bench-dpo-"))
    os.environ.setdefault("FTWIZ_RUNS_DIR", str(work / "runs"))
    os.environ.setdefault("FTWIZ_CACHE_DIR", str(work / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ftwiz.core.tiny import build_tiny_model

    model_dir = build_tiny_model(work / "model", arch="llama", hidden_size=256, num_layers=4, num_heads=8,
                                 num_kv_heads=4)
    pairs = pairs_file(work)
    ratios = []
    for round_ in range(args.rounds):
        order = ("ftwiz", "baseline") if round_ % 2 == 0 else ("baseline", "ftwiz")
        rates = {}
        for side in order:
            if side == "ftwiz":
                rates[side] = ftwiz_tokens_per_s(model_dir, pairs, args.steps, f"bench-dpo-{round_}")
            else:
                rates[side] = baseline_tokens_per_s(model_dir, pairs, args.steps, work / f"baseline-{round_}")
        ratios.append(rates["ftwiz"] / rates["baseline"])
        print(f"DPO round {round_ + 1}: ftwiz {rates['ftwiz']:8.0f} tok/s   baseline {rates['baseline']:8.0f} "
              f"tok/s   ratio {ratios[-1]:.3f}", flush=True)
    median = statistics.median(ratios)
    print(f"DPO median ratio ftwiz / plain TRL DPOTrainer: {median:.3f} (target >= 0.97): "
          f"{'met' if median >= 0.97 else 'NOT met'}")
    return 0 if median >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
