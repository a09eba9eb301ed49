"""`ftwiz train` with stage pt on a document longer than cutoff_len: the report names the blocks trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.events import read_events
from ftwiz.core.rundir import RunDir

CUTOFF = 64


def test_train_pt_reports_documents_to_blocks(tiny_qwen2: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import transformers
    from ftwiz.core.cli import main
    from ftwiz.core.tiny.tokenizer import corpus_text

    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    words, doc = corpus_text().split(), ""
    for word in words:  # a document of ~3.5 x cutoff_len tokens (EOS included)
        if len(tok(f"{doc} {word}".strip(), add_special_tokens=False)["input_ids"]) + 1 > 3.5 * CUTOFF:
            break
        doc = f"{doc} {word}".strip()
    data = tmp_path / "corpus.jsonl"
    data.write_text(json.dumps({"text": doc}) + "\n", encoding="utf-8")
    recipe = tmp_path / "pt.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "stage": "pt", "finetuning_type": "lora",
        "cutoff_len": CUTOFF, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "max_steps": 1,
        "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None, "run_name": "pt-blocks-cli"}))
    capsys.readouterr()
    assert main(["train", str(recipe)]) == 0
    said = capsys.readouterr().err
    assert f"train data: 1 document -> 4 training blocks of <= {CUTOFF} tokens" in said, said
    run = RunDir.resolve("pt-blocks-cli")
    stats = json.loads((run.data / "stats.json").read_text())
    assert (stats["train"]["documents"], stats["train"]["blocks"], stats["train"]["dropped"]) == (1, 4, 0)
    assert any(e.type == "message" and "4 training blocks" in e.text for e in read_events(run.events))
