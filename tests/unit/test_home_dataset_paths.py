"""A dataset path starting with ``~`` is the home folder, as a recipe's model, template and adapter paths already
were: ``dataset: ~/data/qa.jsonl`` in a recipe (or typed into the wizard), ``dataset_dir: ~/lf-data`` and
``ftwiz data check ~/...`` quoted said "dataset not found: ~/data/qa.jsonl". The run's recipe.yaml keeps the ``~``
(its readers expand it wherever it is trained again). Each run stops after its data step. Oracle: the records each
run trains on, as transformers' ``apply_chat_template`` renders them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main


def _qa(folder: Path) -> list[dict[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"question": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(4)]
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def test_a_recipe_dataset_under_the_home_folder_trains_and_stays_home_relative(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    rows = _qa(home / "data")
    (home / "lf").mkdir()
    (home / "lf" / "qa.jsonl").write_bytes((home / "data" / "qa.jsonl").read_bytes())
    (home / "lf" / "dataset_info.json").write_text(json.dumps({"qa": {"file_name": "qa.jsonl", "columns": {
        "prompt": "question", "response": "answer"}}}), encoding="utf-8")
    common = {"model_name_or_path": str(tiny_qwen2), "finetuning_type": "lora", "max_steps": 1, "cutoff_len": 256,
              "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None}
    project = tmp_path / "project"
    project.mkdir()
    (project / "qa.yaml").write_text(yaml.safe_dump({**common, "dataset": ["~/data/qa.jsonl"], "columns": {
        "instruction": "question", "output": "answer"}}), encoding="utf-8")
    (project / "lf.yaml").write_text(yaml.safe_dump({**common, "dataset": ["qa"], "dataset_dir": "~/lf"}),
                                     encoding="utf-8")
    monkeypatch.chdir(project)
    assert main(["recipe", "validate", "qa.yaml"]) == 0  # 'dataset not found: ~/data/qa.jsonl' before
    assert main(["train", "qa.yaml", "--run-name", "home"]) == 130  # stopped after its data step
    assert main(["train", "lf.yaml", "--run-name", "home-lf"]) == 130
    stored = yaml.safe_load((ftwiz_env["runs"] / "home" / "recipe.yaml").read_text(encoding="utf-8"))
    assert stored["dataset"] == ["~/data/qa.jsonl"]
    assert yaml.safe_load((ftwiz_env["runs"] / "home-lf" / "recipe.yaml").read_text(
        encoding="utf-8"))["dataset_dir"] == "~/lf"

    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    expected = sorted(tok.apply_chat_template([{"role": "user", "content": r["question"]},
                                               {"role": "assistant", "content": r["answer"]}], tokenize=False)
                      for r in rows)
    for run in ("home", "home-lf"):
        records = [json.loads(line) for line in (ftwiz_env["runs"] / run / "data" / "train.jsonl").read_text(
            encoding="utf-8").splitlines()]
        assert sorted(tok.apply_chat_template(r["messages"], tokenize=False) for r in records) == expected
