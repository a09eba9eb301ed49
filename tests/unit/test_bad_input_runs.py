"""Bad input about runs a careless new user gives the CLI (run names with paths, damaged or half-deleted run
folders, resuming a renamed run): each gets an error naming the file or field and what to do (exit status 2),
never a Python traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_cli import ftwiz, one_line, refused


def test_run_name_with_a_path_is_refused_before_any_folder(tmp_path: Path, ftwiz_env: dict[str, Path]) -> None:
    # run_name: ../../x trained into a folder two levels above runs/, where no later verb looks for it
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\nrun_name: ../../escaped\n", encoding="utf-8")
    err = refused(ftwiz("recipe", "validate", str(recipe)))
    assert "line 3, 'run_name'" in err and "path separator" in err and "like 'escaped'" in err

    from ftwiz.core.errors import FtwizError
    from ftwiz.core.recipe import Recipe
    from ftwiz.core.train.runner import open_run

    for name in ("../escaped", "a/b", ".."):
        with pytest.raises(FtwizError) as caught:
            open_run(Recipe(model_name_or_path="demo", dataset=["demo"]), run_name=name, resume=None)
        assert "--run-name" in caught.value.render() and "use a plain folder name" in caught.value.render()
    assert not (ftwiz_env["runs"].parent / "escaped").exists() and not (ftwiz_env["runs"] / "a").exists()


def _run_with_damaged_card(runs: Path, name: str) -> Path:
    run = runs / name
    (run / "adapter").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "completed"}), encoding="utf-8")
    (run / "run_card.json").write_text('{"run_name": "damaged", "base_mo', encoding="utf-8")  # cut off
    return run


def test_a_damaged_run_card_is_named_not_a_traceback(tmp_path: Path, ftwiz_env: dict[str, Path]) -> None:
    run = _run_with_damaged_card(ftwiz_env["runs"], "damaged-card")
    err = refused(ftwiz("merge", "damaged-card", "--out", str(tmp_path / "merged")))
    assert f"{run / 'run_card.json'}, line 1: run_card.json of run 'damaged-card' is damaged: not valid JSON" in err
    assert "fix: restore run_card.json from a backup" in err
    assert not (tmp_path / "merged").exists()

    from ftwiz.core.errors import FtwizError
    from ftwiz.core.rundir import RunDir

    (run / "status.json").write_text("[]", encoding="utf-8")  # valid JSON, not what ftwiz wrote
    with pytest.raises(FtwizError, match="status.json of run 'damaged-card' is damaged: not a JSON object"):
        RunDir(run).state()


def test_a_run_folder_without_its_recipe_is_named_as_such(ftwiz_env: dict[str, Path]) -> None:
    # recipe.yaml deleted: export and vllm said "model not found", chat took the name for an Ollama model
    run = ftwiz_env["runs"] / "lost-recipe"
    (run / "adapter").mkdir(parents=True)
    (run / "run_card.json").write_text(json.dumps({"run_name": "lost-recipe"}), encoding="utf-8")
    for verb in ("export", "chat", "merge", "eval"):
        err = refused(ftwiz(verb, "lost-recipe"))
        assert f"error: {run / 'recipe.yaml'}: run folder 'lost-recipe' has no recipe.yaml" in err, verb
        assert "fix: put the run's recipe back as recipe.yaml" in err, verb
    # a mistyped run name is not "an adapter folder missing --out"
    err = refused(ftwiz("merge", "lost-recipie"))
    assert "no ftwiz run found at 'lost-recipie'" in err and "--out is required" not in err


def test_a_run_that_failed_before_training_says_why(ftwiz_env: dict[str, Path]) -> None:
    # what train leaves when it fails before the first step: status.json and events.jsonl, no recipe.yaml
    run = ftwiz_env["runs"] / "failed-early"
    run.mkdir(parents=True)
    (run / "events.jsonl").write_text("", encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "failed", "message": "no usable records in x.jsonl"}),
                                     encoding="utf-8")
    for verb in ("export", "chat"):
        err = refused(ftwiz(verb, "failed-early"))
        assert "run 'failed-early' failed before training started: no usable records in x.jsonl" in err, verb
        assert "fix: fix that, then train again: `ftwiz train RECIPE --run-name failed-early`" in err


def test_resume_of_a_renamed_run_names_its_adapter_where_it_is_now(ftwiz_env: dict[str, Path]) -> None:
    from ftwiz.core.train.result import already_completed

    run = ftwiz_env["runs"] / "renamed-run"
    (run / "adapter").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "completed", "step": 3,  # written under its old name
                                                 "output": str(ftwiz_env["runs"] / "old-name" / "adapter")}))
    # `ftwiz train --resume renamed-run` prints "Its adapter: PATH" from this: it named the old, missing folder
    assert already_completed("renamed-run").output_path == run.resolve() / "adapter"


def test_resume_of_a_completed_run_whose_adapter_was_deleted(ftwiz_env: dict[str, Path]) -> None:
    # "already complete ... Its adapter: runs/x/adapter", a folder that was not there
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.train.result import already_completed

    run = ftwiz_env["runs"] / "adapter-deleted"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "completed", "step": 3}), encoding="utf-8")
    with pytest.raises(FtwizError) as caught:
        already_completed("adapter-deleted")
    said = one_line(caught.value.render())
    assert "run 'adapter-deleted' completed, but its adapter/ folder is gone, so there is nothing to resume" in said
    assert "--run-name adapter-deleted-2" in said
