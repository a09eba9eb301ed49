"""`ftwiz train` reports a typo before it loads transformers and torch (~10 s on a cold start): a recipe that
is not there, a --max-steps it refuses, a dataset path that does not exist. Asserted as a user notices it: the
error comes, and the process never imported transformers to produce it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from ftwiz.core.cli import main
code = main(sys.argv[1:])
print("exit", code, "transformers" in sys.modules, "torch" in sys.modules)
"""


def _train(args: list[str], cwd: Path) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, "train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    return done.stdout.strip().splitlines()[-1], done.stderr


@pytest.mark.parametrize("case", ["no recipe file", "max_steps 0", "no dataset file"])
def test_a_typo_is_reported_before_transformers_loads(tmp_path: Path, case: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [data.jsonl]\nfinetuning_type: lora\n", encoding="utf-8")
    (tmp_path / "data.jsonl").write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    args = {"no recipe file": ["nosuch.yaml"], "max_steps 0": ["r.yaml", "--max-steps", "0"],
            "no dataset file": ["r.yaml"]}[case]
    if case == "no dataset file":
        (tmp_path / "data.jsonl").unlink()
    status, err = _train(args, tmp_path)
    assert status == "exit 2 False False", err
    expected = {"no recipe file": "nosuch.yaml", "max_steps 0": "--max-steps", "no dataset file": "data.jsonl"}[case]
    assert expected in err and "fix:" in err
