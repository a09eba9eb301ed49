"""`ftwiz eval` of a continued-pre-training run: held-out raw text gives perplexity, base vs tuned, in the
cutoff_len blocks training used, checked against transformers' own causal-LM loss."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.rundir import RunDir

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"
CUTOFF = 16  # short: every held-out document becomes several blocks


def _hf_perplexity(model_dir: Path, documents: list[str]) -> float:
    """Oracle: transformers' loss (labels=input_ids) of each cutoff block, tokens weighted, then exp."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    for text in documents:
        ids = tokenizer(text + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids), CUTOFF):
            block = torch.tensor([ids[start:start + CUTOFF]])
            if block.shape[1] < 2:
                continue
            with torch.no_grad():
                loss = model(input_ids=block, labels=block).loss.item()
            total += loss * (block.shape[1] - 1)
            count += block.shape[1] - 1
    return math.exp(total / count)


@pytest.fixture()
def pt_run(tiny_qwen2: Path, tmp_path: Path) -> RunDir:
    texts = [json.loads(line)["messages"][-1]["content"].replace("\n", " ")
             for line in DEMO_DATA.read_text().splitlines()[:60]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(dict.fromkeys(texts)) + "\n", encoding="utf-8")
    recipe = {"model_name_or_path": str(tiny_qwen2), "dataset": [str(corpus)], "stage": "pt",
              "finetuning_type": "lora", "cutoff_len": CUTOFF, "max_steps": 8, "per_device_train_batch_size": 4,
              "learning_rate": 5e-2, "lr_scheduler_type": "constant", "warmup_ratio": 0.0, "lora_rank": 8,
              "save_steps": 8, "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.25,
              "run_name": "pt-eval"}
    path = tmp_path / "pt.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert cli_main(["train", str(path)]) == 0
    return RunDir.resolve("pt-eval")


def test_eval_of_a_pt_run_reports_held_out_perplexity(pt_run: RunDir, tiny_qwen2: Path, capsys) -> None:
    capsys.readouterr()
    assert cli_main(["eval", "pt-eval", "--no-forgetting", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    documents = [json.loads(line)["messages"][0]["content"]
                 for line in (pt_run.data / "test.jsonl").read_text().splitlines() if line.strip()]
    assert report["n_samples"] == len(documents) >= 5 and report["samples"] == []
    models = {m["label"]: m for m in report["models"]}
    assert set(models) == {"base", "tuned"}
    assert models["base"]["perplexity"] == pytest.approx(_hf_perplexity(tiny_qwen2, documents), rel=1e-3)
    assert models["tuned"]["perplexity"] < models["base"]["perplexity"]  # it learned the domain's text
    assert any("raw text" in note for note in report["notes"])
    assert cli_main(["eval", "pt-eval", "--no-forgetting"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "documents (raw text)" in out and "loss (held-out text)" in out and "perplexity" in out
    assert "no 'messages'" not in out
    # the training split is not held out: the report must not call it so
    assert cli_main(["eval", "pt-eval", "--no-forgetting", "--split", "train"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "loss (text)" in out and "loss (held-out text)" not in out and "training may have seen it" in out
