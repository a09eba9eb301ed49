"""`ftwiz train` continued pre-training (stage pt) from a plain .txt file, one record a line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.rundir import RunDir

DEMO_DATA = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"


def corpus_txt(tmp_path: Path, lines: int = 24) -> Path:
    answers = [json.loads(line)["messages"][-1]["content"].replace("\n", " ")
               for line in DEMO_DATA.read_text().splitlines()[:lines]]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(answers) + "\n", encoding="utf-8")
    return path


def test_cli_trains_pt_from_a_txt_file(tiny_qwen2: Path, tmp_path: Path, capsys) -> None:
    recipe = {"model_name_or_path": str(tiny_qwen2), "dataset": [str(corpus_txt(tmp_path))], "stage": "pt",
              "finetuning_type": "lora", "cutoff_len": 64, "max_steps": 2, "per_device_train_batch_size": 2,
              "lora_rank": 4, "save_steps": 2, "near_dedup_threshold": None, "val_size": 0.0, "test_size": 0.0,
              "run_name": "pt-txt"}
    path = tmp_path / "pt.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert cli_main(["train", str(path)]) == 0
    run = RunDir.resolve("pt-txt")
    assert run.state() == "completed" and (run.adapter / "adapter_model.safetensors").exists()
    stats = json.loads((run.root / "data" / "stats.json").read_text())
    assert stats["read"] == 24 and list(stats["formats"].values()) == ["text"]  # one record a line of the .txt
    assert stats["train"]["samples"] == 24 - stats["exact_duplicates"]
