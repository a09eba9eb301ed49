"""Training a run's stored recipe.yaml again (``ftwiz train runs/X/recipe.yaml --run-name X-2``, the command a
completed run suggests) trains the text the run trained.

The run stores its system prompt filled; a ``--var`` value holding ``{{author}}`` was filled a second time on the
retrain ("You are {{author}} bot" became "You are Sam bot"). Oracle: transformers' ``apply_chat_template`` of the
records each run trains on, and the prompt filled by hand. Each run stops after its data step (a pre-set cancel
flag), so the test costs two data steps, no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from ftwiz.core.cli import main as cli_main

SYSTEM = "You are {{name}}, made by {{author}}."
FILLED = "You are {{author}} bot, made by Sam."  # SYSTEM with name='{{author}} bot', author=Sam, by hand


def _rendered(tok, run: Path) -> list[str]:
    """What the run trains on, rendered by the model's own chat template (transformers)."""
    records = [json.loads(line) for line in (run / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    return sorted(tok.apply_chat_template(r["messages"], tokenize=False) for r in records)


def test_training_a_runs_recipe_again_trains_the_same_system_prompt(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: None, capsys) -> None:
    import transformers

    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"answer {i}, by {{{{author}}}}."})
                            + "\n" for i in range(3)), encoding="utf-8")
    recipe = tmp_path / "identity.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None, "system": SYSTEM,
        "variables": {"author": "Sam"}}), encoding="utf-8")
    assert cli_main(["train", str(recipe), "--run-name", "first", "--var", "name={{author}} bot"]) == 130
    first = ftwiz_env["runs"] / "first"
    capsys.readouterr()
    assert cli_main(["train", str(first / "recipe.yaml"), "--run-name", "again"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert "fills nothing" not in err, err  # the stored values filled the stored prompt: nothing to warn about

    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    trained = _rendered(tok, first)
    assert len(trained) == 3 and all(FILLED in text and "answer" in text for text in trained), trained
    assert _rendered(tok, ftwiz_env["runs"] / "again") == trained
    cards = [json.loads((ftwiz_env["runs"] / run / "run_card.json").read_text()) for run in ("first", "again")]
    assert cards[0]["dataset_hash"] == cards[1]["dataset_hash"]  # the same data, as the run card tells

    # another value cannot reach a prompt stored filled: refused with the way out, not trained with the old one
    assert cli_main(["train", str(first / "recipe.yaml"), "--run-name", "bob", "--var", "name=Bob"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--var name:" in err and "stores its system prompt filled" in err, err
    assert "train from the recipe the run started with" in err, err
    assert not (ftwiz_env["runs"] / "bob").exists()


def test_resume_with_the_recipe_given_accepts_runs_stored_with_and_without_the_mark(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: None, capsys) -> None:
    """`ftwiz train RECIPE --resume RUN` compares RECIPE, filled, with the run's recipe.yaml; a run started before
    ftwiz marked its stored prompt (no system_filled line) must still match. Oracle: the recipe file itself."""
    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"answer {i}."}) + "\n"
                            for i in range(3)), encoding="utf-8")
    recipe = tmp_path / "aria.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
        "system": "You are {{name}}.", "variables": {"name": "Aria"}, "run_name": "aria"}), encoding="utf-8")
    assert cli_main(["train", str(recipe)]) == 130  # cancelled after its data step: a run to resume
    stored = ftwiz_env["runs"] / "aria" / "recipe.yaml"
    assert yaml.safe_load(stored.read_text())["system"] == "You are Aria."
    for older in (False, True):
        if older:  # as an older ftwiz wrote it: the same filled prompt, no mark
            fields = yaml.safe_load(stored.read_text())
            del fields["system_filled"]
            stored.write_text(yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")
        assert cli_main(["train", str(recipe), "--resume", "aria"]) == 130, capsys.readouterr().err
    other = tmp_path / "bob.yaml"
    other.write_text(recipe.read_text().replace("Aria", "Bob"), encoding="utf-8")
    assert cli_main(["train", str(other), "--resume", "aria"]) == 2  # another value is another recipe
    assert "differs from the recipe run 'aria' was started with" in " ".join(capsys.readouterr().err.split())


def test_a_new_value_for_a_name_the_data_and_the_stored_prompt_both_used_is_refused(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: None, capsys) -> None:
    """`ftwiz train runs/X/recipe.yaml --var name=Bob` where {{name}} was in the system prompt and the data: the data
    would say Bob while the stored prompt says Aria (it was trained so, silently). Oracle: the stored recipe.yaml."""
    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"who {i}?", "output": f"I am {{{{name}}}} ({i})."}) + "\n"
                            for i in range(3)), encoding="utf-8")
    recipe = tmp_path / "aria.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
        "system": "You are {{name}}.", "variables": {"name": "Aria"}}), encoding="utf-8")
    assert cli_main(["train", str(recipe), "--run-name", "aria-both"]) == 130
    stored = ftwiz_env["runs"] / "aria-both" / "recipe.yaml"
    assert yaml.safe_load(stored.read_text(encoding="utf-8"))["system"] == "You are Aria."
    capsys.readouterr()
    assert cli_main(["train", str(stored), "--run-name", "bob-both", "--var", "name=Bob"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--var name:" in err and "'Aria'" in err and "train from the recipe the run started with" in err, err
    assert not (ftwiz_env["runs"] / "bob-both").exists()
    # the same value is the same run's text: trained again
    assert cli_main(["train", str(stored), "--run-name", "aria-both-2", "--var", "name=Aria"]) == 130


def test_resume_with_the_starting_command_and_its_var_values_is_accepted(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: None, capsys) -> None:
    """`ftwiz train r.yaml --var name=Zed`, cancelled, then the same command with `--resume RUN` added: it was
    refused as "r.yaml differs from the recipe run was started with" (the --var value was not applied to the recipe
    compared), and --var with --resume was refused even when it changed nothing. Oracle: the stored recipe.yaml."""
    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"answer {i}."}) + "\n"
                            for i in range(3)), encoding="utf-8")
    recipe = tmp_path / "zed.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
        "system": "You are {{name}}.", "run_name": "zed-resume"}), encoding="utf-8")
    assert cli_main(["train", str(recipe), "--var", "name=Zed"]) == 130  # cancelled after its data step
    stored = yaml.safe_load((ftwiz_env["runs"] / "zed-resume" / "recipe.yaml").read_text(encoding="utf-8"))
    assert (stored["system"], stored["variables"]) == ("You are Zed.", {"name": "Zed"})
    capsys.readouterr()
    assert cli_main(["train", str(recipe), "--var", "name=Zed", "--resume", "zed-resume"]) == 130, \
        capsys.readouterr().err
    assert cli_main(["train", "--var", "name=Zed", "--resume", "zed-resume"]) == 130, capsys.readouterr().err
    assert cli_main(["train", str(recipe), "--var", "name=Bob", "--resume", "zed-resume"]) == 2
    assert "differs from the recipe run 'zed-resume' was started with (in system, variables)" in " ".join(
        capsys.readouterr().err.split())
    assert cli_main(["train", "--var", "name=Bob", "--resume", "zed-resume"]) == 2
    assert "cannot change the data of a run being resumed" in capsys.readouterr().err


def test_a_copy_of_a_runs_recipe_given_a_new_placeholder_is_not_trained_with_the_braces(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], stop_after_data: None, capsys) -> None:
    """A copy of runs/X/recipe.yaml whose system: was edited to 'You are {{name}} v2', system_filled: true left in:
    the braces were trained and stored as written, silently, though variables: gives name. Oracle: transformers'
    apply_chat_template of what the run trains on once the system_filled line is deleted."""
    import transformers

    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"who {i}?", "output": f"answer {i}."}) + "\n"
                            for i in range(3)), encoding="utf-8")
    recipe = tmp_path / "v1.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None,
        "system": "You are {{name}}.", "variables": {"name": "Aria"}}), encoding="utf-8")
    assert cli_main(["train", str(recipe), "--run-name", "edit-v1"]) == 130
    fields = yaml.safe_load((ftwiz_env["runs"] / "edit-v1" / "recipe.yaml").read_text(encoding="utf-8"))
    fields["system"] = "You are {{name}} v2."
    edited = tmp_path / "v2.yaml"
    edited.write_text(yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["recipe", "validate", str(edited)]) == 0
    assert "system: {{name}} is kept as written (system_filled: true)" in capsys.readouterr().out
    assert cli_main(["train", str(edited), "--run-name", "edit-v2"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{edited}, field 'system_filled': system: holds {{{{name}}}}" in err and "delete the system_filled" in err
    assert not (ftwiz_env["runs"] / "edit-v2").exists()
    del fields["system_filled"]
    edited.write_text(yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")
    assert cli_main(["train", str(edited), "--run-name", "edit-v2"]) == 130
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    rendered = _rendered(tok, ftwiz_env["runs"] / "edit-v2")
    expected = tok.apply_chat_template([{"role": "system", "content": "You are Aria v2."},
                                        {"role": "user", "content": "who 0?"},
                                        {"role": "assistant", "content": "answer 0."}], tokenize=False)
    assert expected in rendered, rendered
