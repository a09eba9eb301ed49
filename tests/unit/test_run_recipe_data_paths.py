"""A run's recipe.yaml kept the dataset path as the user wrote it (``dataset: [data/qa.jsonl]``), so training it
again from another directory (``ftwiz train runs/X/recipe.yaml``, the command a run suggests) stopped with
"dataset not found: data/qa.jsonl". The run stores the path absolute, resolved when it starts; the user's own recipe
file is untouched, and continuing or resuming the run with that recipe (relative paths) is still the same recipe.
Each run stops after its data step (a pre-set cancel flag). Oracle: the records each run trains on, as transformers'
``apply_chat_template`` renders them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main
from run_records import rendered_records


def test_a_runs_recipe_trains_again_from_another_directory(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import transformers

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "qa.jsonl").write_text("".join(
        json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(4)), encoding="utf-8")
    written = yaml.safe_dump({"model_name_or_path": str(tiny_qwen2), "dataset": ["data/qa.jsonl"],
                              "columns": {"instruction": "question", "output": "answer"}, "finetuning_type": "lora",
                              "max_steps": 1, "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0,
                              "near_dedup_threshold": None})
    (project / "qa.yaml").write_text(written, encoding="utf-8")
    monkeypatch.chdir(project)
    assert main(["train", "qa.yaml", "--run-name", "paths-first"]) == 130
    first = ftwiz_env["runs"] / "paths-first"
    stored = yaml.safe_load((first / "recipe.yaml").read_text(encoding="utf-8"))
    assert stored["dataset"] == [str(project / "data" / "qa.jsonl")]
    assert (project / "qa.yaml").read_text(encoding="utf-8") == written  # the user's recipe says what it said

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["train", str(first / "recipe.yaml"), "--run-name", "paths-again"]) == 130
    assert "dataset not found" not in capsys.readouterr().err
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    trained = rendered_records(tok, first)
    assert len(trained) == 4 and all("What is" in text for text in trained), trained
    assert rendered_records(tok, ftwiz_env["runs"] / "paths-again") == trained

    # the user's recipe (relative paths) from its own folder is still the recipe the run was started with:
    # continuing the stopped run by name, and --resume with the recipe, are not refused as a changed recipe
    monkeypatch.chdir(project)
    assert main(["train", "qa.yaml", "--run-name", "paths-first"]) == 130
    assert main(["train", "qa.yaml", "--resume", "paths-first"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert "changed" not in err and "differs from the recipe" not in err, err


def test_the_stored_paths_follow_the_loaders_rules(tmp_path: Path) -> None:
    """A dataset_dir makes only that folder absolute (the entries are names in its dataset_info.json); without one
    every path (globs kept) and the mix dataset are; 'demo' and absolute paths stay."""
    from ftwiz.core.recipe import Recipe
    from ftwiz.core.recipe_inputs import with_absolute_paths

    plain = Recipe(model_name_or_path="demo", dataset=["a.jsonl", "../shared/*.json", "demo", "/abs/b.json"],
                   mix_dataset="general.jsonl")
    stored = with_absolute_paths(plain, tmp_path / "work")
    assert stored.dataset == [str(tmp_path / "work" / "a.jsonl"), str(tmp_path / "shared" / "*.json"), "demo",
                              "/abs/b.json"]
    assert stored.mix_dataset == str(tmp_path / "work" / "general.jsonl")
    assert plain.dataset[0] == "a.jsonl"  # the recipe given is not changed
    named = Recipe(model_name_or_path="demo", dataset=["my_qa"], dataset_dir="data", mix_dataset="alpaca_en")
    stored = with_absolute_paths(named, tmp_path)
    assert (stored.dataset, stored.dataset_dir, stored.mix_dataset) == (["my_qa"], str(tmp_path / "data"), "alpaca_en")
