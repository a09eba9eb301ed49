"""A misspelled role in a dataset_info.json entry's "columns" (``"instrution": "question"``) renamed the user's
column to a name nothing reads, and the records then failed with only the key. It is refused when dataset_info.json
is read, as ``--column`` and a recipe's ``columns:`` are: naming the file, the line, the entry and the key, the
closest role and the valid roles; by ``ftwiz data`` and by ``ftwiz train`` before a run folder is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bad_input_cli import one_line
from ftwiz.core.cli import main


def _project(root: Path, columns: dict[str, str]) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    (data / "qa.jsonl").write_text("".join(json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
                                           for i in range(3)), encoding="utf-8")
    info = {"alpaca_en": {"file_name": "alpaca.json"}, "my_qa": {"file_name": "qa.jsonl", "columns": columns}}
    (data / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return data


def test_a_misspelled_role_in_dataset_info_columns_is_refused_naming_file_entry_and_key(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = _project(tmp_path, {"instrution": "question", "output": "answer"})
    info = data / "dataset_info.json"
    line = next(n for n, text in enumerate(info.read_text(encoding="utf-8").splitlines(), 1) if '"instrution"' in text)
    assert main(["data", "check", "my_qa", "--dataset-dir", str(data)]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"error: {info}, line {line}, field 'my_qa.columns.instrution': in the \"columns\" of "
                          "dataset 'my_qa', 'instrution' (mapped to your column 'question') is not a role ftwiz reads (did "
                          "you mean 'instruction'?); the left side names the role, the right side your column"), err
    assert err.endswith("fix: write it as \"instruction\": \"question\" in the \"columns\" of 'my_qa'"), err
    assert "cannot tell the format" not in err

    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "qa.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(tiny_qwen2), "dataset": ["my_qa"],
                                      "dataset_dir": "data", "finetuning_type": "lora", "max_steps": 1}),
                      encoding="utf-8")
    assert main(["train", str(recipe), "--run-name", "info-roles"]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{Path('data') / 'dataset_info.json'}, line {line}, field 'my_qa.columns.instrution'" in err, err
    assert "(did you mean 'instruction'?)" in err
    assert not (ftwiz_env["runs"] / "info-roles").exists()  # refused before a run folder is made


def test_dataset_info_columns_with_valid_roles_are_read(tmp_path: Path, ftwiz_env: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Our role names and LLaMA-Factory's (prompt/response) are taken: the three records are kept."""
    for columns, folder in (({"instruction": "question", "output": "answer"}, "ours"),
                            ({"prompt": "question", "response": "answer"}, "lf")):
        data = _project(tmp_path / folder, columns)
        assert main(["data", "check", "my_qa", "--dataset-dir", str(data), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["read"], report["kept"]) == (3, 3), report
