"""``ftwiz train`` to a pipe or a log says ``warning:`` in front of its warnings, as ``ftwiz data`` does.

Its warnings were coloured only, so in a log (``ftwiz train ... 2>&1 | tee train.log``) "--var name is empty"
read like any progress line. Oracle: the same warning as ``ftwiz data check`` prints it, and the rule that
every warning line in the log names its kind. The run stops after its data step (a pre-set cancel flag).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main


def test_piped_train_prefixes_its_warnings_as_data_check_does(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys, stop_after_data: list) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    data = tmp_path / "identity.jsonl"
    # three records: too few for a validation split, a warning of the data step (said during training)
    data.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": f"I am {{{{name}}}}, number {i}."})
                            + "\n" for i in range(3)), encoding="utf-8")
    recipe = tmp_path / "identity.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "near_dedup_threshold": None}), encoding="utf-8")

    assert cli_main(["data", "check", str(data), "--var", "name="]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "--var name is empty" in line]
    assert said == ["warning: --var name is empty: {{name}} becomes empty text (an unset shell variable?)"], said

    assert cli_main(["train", str(recipe), "--run-name", "piped", "--var", "name="]) == 130
    err = capsys.readouterr().err.splitlines()
    assert said[0] in err, err  # the same line, whole, as ftwiz data says it
    too_few = [line for line in err if "too few to hold out a validation split" in line]
    assert len(too_few) == 1 and too_few[0].startswith("warning: only 3 record(s)"), err
