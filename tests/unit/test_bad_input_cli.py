"""Bad input a careless new user gives the CLI: each gets an error naming the file, line or field and what
to do (exit status 2), never a Python traceback, and nothing is written where it should not be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "ftwiz.tui.launcher_main"]


def ftwiz(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def one_line(text: str) -> str:
    return " ".join(text.split())


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The error a user reads, after checking it is an error and no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return one_line(result.stderr)


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
