"""``ftwiz vllm`` of a run trained with a recipe ``system:`` prompt says so, and its README's request sends it.

vLLM adds no system prompt; the README's curl example and the printed command gave no hint that every
training record began with one, so a user pasting them prompted the model unlike its training data.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

SYSTEM = "You are Aria, the bike-shop assistant."


@pytest.fixture()
def run(tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    root = tmp_path / "runs" / "aria"
    shutil.copytree(tiny_qwen2, root / "merged")
    (root / "recipe.yaml").write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: [demo]\n"
                                      f"system: {json.dumps(SYSTEM)}\n", encoding="utf-8")
    return root


def test_the_readme_request_sends_the_trained_system_prompt(run: Path, tmp_path: Path) -> None:
    from ftwiz.core.scale.vllm import export_for_vllm

    readme = (export_for_vllm(run, tmp_path / "serve") / "README.md").read_text(encoding="utf-8")
    body = json.loads(readme.split("-d '", 1)[1].split("'\n", 1)[0])
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert body["messages"][-1]["role"] == "user"


def test_the_cli_says_the_system_prompt_to_send(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import vllm

    parser = argparse.ArgumentParser()
    vllm.add_arguments(parser)
    assert vllm.run(parser.parse_args([str(run)])) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("vllm serve ")
    assert SYSTEM in printed and "system" in printed
