"""Records/s of ftwiz's data preparation against a plain `datasets.map` + `apply_chat_template`, same run.

Run: python bench/data_throughput.py [--records 50000] [--tokenizer PATH]
Both sides read the same synthetic 50k-record Alpaca JSONL and use the same real tokenizer (Qwen2 from
../shared/tokenizers by default). ftwiz's side is the whole `prepare_for_training` path: load, validate
every record, normalise, split, render with the chat template, tokenize and build the assistant-only loss
mask (plus the mask verification sample). The baseline is what a user would write by hand: load_dataset
+ map(apply_chat_template(tokenize=True)), with no validation and no masks. Target: ratio >= 1.0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ["river", "mountain", "data", "model", "answer", "question", "light", "garden", "system", "network", "market", "story", "city", "ocean", "engine", "window", "forest", "paper", "music", "signal", "energy", "planet"]


def synthetic_alpaca(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            instruction = f"Explain item {i}: " + " ".join(rng.choices(WORDS, k=rng.randint(5, 25)))
            output = " ".join(rng.choices(WORDS, k=rng.randint(10, 60))) + "."
            fh.write(json.dumps({"instruction": instruction, "input": "", "output": output}) + "\n")
    return path


def ftwiz_side(data: Path, tokenizer_dir: Path) -> tuple[float, int]:
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe import parse_recipe
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    recipe = parse_recipe({"model_name_or_path": str(tokenizer_dir), "dataset": [str(data)], "cutoff_len": 512,
                           "dedup": False, "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.0})
    start = time.perf_counter()
    prepared = prepare_for_training(recipe, tokenizer)
    return time.perf_counter() - start, len(prepared.train)


def baseline_side(data: Path, tokenizer_dir: Path) -> tuple[float, int]:
    from datasets import load_dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    start = time.perf_counter()
    ds = load_dataset("json", data_files=str(data), split="train")

    def encode(row):
        messages = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]
        return {"input_ids": tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)}

    ds = ds.map(encode, remove_columns=ds.column_names)
    return time.perf_counter() - start, len(ds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--tokenizer", type=Path,
                        default=REPO.parent / "shared" / "tokenizers" / "Qwen2-1.5B-Instruct-Boundless")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ftwiz-data-bench-"))
    os.environ.setdefault("HF_DATASETS_CACHE", str(work / "hf-datasets"))
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    data = synthetic_alpaca(work / "synthetic.jsonl", args.records)
    baseline_s, baseline_n = baseline_side(data, args.tokenizer)
    ours_s, ours_n = ftwiz_side(data, args.tokenizer)
    ours_rate, base_rate = args.records / ours_s, args.records / baseline_s
    ratio = ours_rate / base_rate
    print(f"baseline (datasets.map + apply_chat_template): {base_rate:8.0f} records/s ({baseline_n} rows)")
    print(f"ftwiz prepare (validate + template + masks):   {ours_rate:8.0f} records/s ({ours_n} rows)")
    print(f"ratio {ratio:.2f} (target >= 1.0): {'met' if ratio >= 1.0 else 'NOT met'}")
    return 0 if ratio >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
