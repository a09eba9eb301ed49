"""A run's recipe.yaml kept ``template: chat.jinja`` and ``model_name_or_path: models/tiny`` as written, so training
it again from another directory (``ftwiz train runs/X/recipe.yaml``) stopped with "model not found" (or "chat
template file not found"). The run stores every local path absolute, resolved when it starts (a hub id and ``demo``
stay as written); the user's recipe file is untouched, and continuing or resuming with it still matches the run.
Each run stops after its data step (a pre-set cancel flag). Oracles: the user's own template file and model folder,
and the records each run trains on as transformers' ``apply_chat_template`` renders them with that file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main
from run_records import rendered_records


def test_a_runs_recipe_with_a_relative_model_and_template_trains_again_elsewhere(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: list,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import transformers
    from ftwiz.core.chat_templates.named import NAMED_TEMPLATES

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copytree(tiny_qwen2, project / "models" / "tiny")
    (project / "chat.jinja").write_text(NAMED_TEMPLATES["alpaca"], encoding="utf-8")  # not the model's ChatML
    (project / "data" / "qa.jsonl").write_text("".join(
        json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(4)), encoding="utf-8")
    written = yaml.safe_dump({"model_name_or_path": "models/tiny", "template": "chat.jinja", "dataset": ["data/qa.jsonl"],
                              "columns": {"instruction": "question", "output": "answer"}, "finetuning_type": "lora",
                              "max_steps": 1, "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0,
                              "near_dedup_threshold": None})
    (project / "qa.yaml").write_text(written, encoding="utf-8")
    monkeypatch.chdir(project)
    assert main(["train", "qa.yaml", "--run-name", "local-first"]) == 130
    first = ftwiz_env["runs"] / "local-first"
    stored = yaml.safe_load((first / "recipe.yaml").read_text(encoding="utf-8"))
    assert stored["model_name_or_path"] == str(project / "models" / "tiny")
    assert stored["template"] == str(project / "chat.jinja")
    assert (project / "qa.yaml").read_text(encoding="utf-8") == written  # the user's recipe says what it said

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["train", str(first / "recipe.yaml"), "--run-name", "local-again"]) == 130
    assert "not found" not in capsys.readouterr().err
    again = ftwiz_env["runs"] / "local-again"
    card = json.loads((again / "run_card.json").read_text(encoding="utf-8"))
    assert card["base_model"] == str((project / "models" / "tiny").resolve())
    assert card["chat_template"] == (project / "chat.jinja").read_text(encoding="utf-8")
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    tok.chat_template = (project / "chat.jinja").read_text(encoding="utf-8")
    trained = rendered_records(tok, first)
    assert len(trained) == 4 and all("### Instruction" in text and "What is" in text for text in trained), trained
    assert rendered_records(tok, again) == trained

    # the user's recipe (relative paths) from its own folder is still the recipe the run was started with
    monkeypatch.chdir(project)
    assert main(["train", "qa.yaml", "--run-name", "local-first"]) == 130
    assert main(["train", "qa.yaml", "--resume", "local-first"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert "changed" not in err and "differs from the recipe" not in err, err


def test_which_model_adapter_and_template_values_are_paths(tmp_path: Path) -> None:
    """A value becomes absolute when its reader would read it as a local path from the working directory: a model
    folder that exists there (even one named like a hub id), an adapter or run folder, a template file. A hub id
    with no such folder, 'demo', a run name, a template name and Jinja text stay as written."""
    from ftwiz.core.recipe import Recipe
    from ftwiz.core.recipe_inputs import with_absolute_paths

    work = tmp_path / "work"
    (work / "adapters" / "sft").mkdir(parents=True)
    (work / "adapters" / "sft" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (work / "sft").mkdir()  # a folder named like the run, without an adapter: the run name is meant
    (work / "Org" / "local-model").mkdir(parents=True)

    def stored(**values: str) -> Recipe:
        return with_absolute_paths(Recipe(**{"model_name_or_path": "demo", "dataset": ["demo"], **values}), work)

    assert stored(model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct").model_name_or_path == "Qwen/Qwen2.5-0.5B-Instruct"
    assert stored(model_name_or_path="demo").model_name_or_path == "demo"
    assert stored(model_name_or_path="Org/local-model").model_name_or_path == str(work / "Org" / "local-model")
    assert stored(model_name_or_path="/abs/model").model_name_or_path == "/abs/model"
    assert stored(adapter_name_or_path="adapters/sft").adapter_name_or_path == str(work / "adapters" / "sft")
    assert stored(adapter_name_or_path="sft").adapter_name_or_path == "sft"
    assert stored(template="tpl/chat.jinja").template == str(work / "tpl" / "chat.jinja")
    assert stored(template="chatml").template == "chatml"
    inline = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert stored(template=inline).template == inline
    assert stored(template="~/chat.jinja").template == "~/chat.jinja"  # its reader expands ~: one file from anywhere
