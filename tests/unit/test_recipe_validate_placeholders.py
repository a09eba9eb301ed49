"""`ftwiz recipe validate` says which `{{name}}` placeholders of `system:` have no value, before train refuses.

A recipe with `system: "You are {{name}}, made by {{maker}}."` and no `variables:` validated 'ok'; then
`ftwiz train` stopped: 'the system prompt still has unfilled placeholders'.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main


def _recipe(tmp_path: Path, extra: str) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    path = tmp_path / "r.yaml"
    path.write_text(f"model_name_or_path: demo\ndataset: [{data}]\n"
                    f"system: \"You are {{{{name}}}}, made by {{{{maker}}}}.\"\n{extra}", encoding="utf-8")
    return path


def test_validate_names_the_system_placeholders_train_would_refuse(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["recipe", "validate", str(_recipe(tmp_path, "variables:\n  name: Aria\n"))]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "{{maker}}" in out and "{{name}}" not in out and "--var maker=VALUE" in out
    assert cli_main(["recipe", "validate", str(_recipe(tmp_path, "variables:\n  name: A\n  maker: B\n"))]) == 0
    assert "placeholder" not in capsys.readouterr().out
