"""README's planning commands work on a fresh, offline machine: a curated model plans from ftwiz's built-in
config (the one the wizard's model step rates), not from a download."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


def _readme_plan_commands() -> list[str]:
    """Every `ftwiz plan ...` command README.md shows, in backticks."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"`(ftwiz plan [^`]+)`", text)))


@pytest.fixture()
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hub = tmp_path / "empty-hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.chdir(REPO)  # README's paths are relative to the repository
    return hub


def test_readme_shows_a_plan_command() -> None:
    assert any("recipes/llama-3.1-8b-qlora-8gb.yaml" in command for command in _readme_plan_commands())


@pytest.mark.parametrize("command", _readme_plan_commands())
def test_readme_plan_command_works_offline_with_an_empty_cache(command: str, empty_hf_cache: Path, capsys) -> None:
    code = cli_main(shlex.split(command)[1:])
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert code == 0, captured.err
    assert "fits" in out and "does NOT fit" not in out
    if "--vram-gb 8" in command:
        assert "8 GiB GPU (given)" in out
        # a card the user names is not one detected here: its bf16 support is an assumption, said as one
        assert "assumed for the card you gave" in out and "your GPU supports it" not in out
    assert "built-in config for meta-llama/Llama-3.1-8B-Instruct (not downloaded)" in out
    assert not any(empty_hf_cache.iterdir())  # nothing was downloaded


def test_curated_hub_id_plans_from_the_built_in_config_as_json(empty_hf_cache: Path, capsys) -> None:
    import json

    assert cli_main(["plan", "Qwen/Qwen2.5-7B-Instruct", "--vram-gb", "24", "--json"]) == 0
    captured = capsys.readouterr()
    plan = json.loads(captured.out)  # the note goes to stderr, so --json stays parseable
    assert plan["fits"] and plan["model"]["parameters"] == pytest.approx(7.62e9, rel=0.01)
    assert "built-in config for Qwen/Qwen2.5-7B-Instruct (not downloaded)" in " ".join(captured.err.split())


def test_uncurated_uncached_hub_id_still_points_at_online_and_pull(empty_hf_cache: Path, capsys) -> None:
    assert cli_main(["plan", "nobody/not-cached", "--vram-gb", "24"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not in the local Hugging Face cache" in err and "--online" in err and "ftwiz pull nobody/not-cached" in err


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")
                                          if "model_name_or_path: demo" not in p.read_text()))
def test_every_shipped_hub_recipe_plans_offline(recipe: str, empty_hf_cache: Path, capsys) -> None:
    """Recipes say "plan it first": on a fresh offline machine that must plan, not ask for a download."""
    code = cli_main(["plan", f"recipes/{recipe}", "--vram-gb", "24"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err  # 1: planned, and it does not fit; 2 would be an error
    assert "built-in config for" in " ".join(captured.out.split())
