"""`ftwiz eval` of a run on the demo model: the built-in forgetting text is the demo model's own pre-training
corpus, so a ratio of 1.00 there proves nothing; the report says so and names the flag for real text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main


@pytest.mark.slow
def test_eval_of_a_demo_run_warns_that_the_forgetting_text_is_its_training_corpus(
        demo_base_model: Path, ftwiz_env: dict[str, Path], tmp_path: Path, capsys) -> None:
    rows = [{"instruction": f"Name colour number {i}.", "input": "", "output": f"Colour {i} is blue."}
            for i in range(24)]
    data = tmp_path / "colours.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": "demo", "dataset": [str(data)], "finetuning_type": "lora",
                                      "max_steps": 1, "cutoff_len": 64, "test_size": 0.2, "val_size": 0.0,
                                      "run_name": "demo-forgetting"}), encoding="utf-8")
    assert cli_main(["train", str(recipe)]) == 0
    capsys.readouterr()
    assert cli_main(["eval", "demo-forgetting", "--max-samples", "2", "--max-new-tokens", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["forgetting"] is not None
    assert any("demo model was pre-trained on" in w and "--forgetting FILE" in w for w in report["warnings"])
    own = tmp_path / "general.txt"
    own.write_text("Rivers carry water from mountains to the sea. Markets open early on Saturdays.\n" * 20)
    assert cli_main(["eval", "demo-forgetting", "--max-samples", "2", "--max-new-tokens", "4", "--json",
                     "--forgetting", str(own)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert not any("demo model was pre-trained on" in w for w in report["warnings"])
