"""What `ftwiz train R --gpus N` does before it launches its ranks. `--download` did not reach them: each rank
found the hub model missing from the cache and failed alike, while the one-device run downloads it. `--events`
was dropped without a word. Now the launcher downloads the model once (asked as a one-device run is) before any
rank starts, and refuses --events, which no rank would write. Oracle: the local fake hub's cache (tests/fake_hub.py)
and the command the ranks would be launched with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_cli import one_line
from fake_hub import REPO

pytest_plugins = ["hub_fixtures"]


def _recipe(tmp_path: Path, model: str) -> Path:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i} it is."}) + "\n"
                            for i in range(12)), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: {model}\ndataset: [{data}]\nfinetuning_type: lora\n", encoding="utf-8")
    return recipe


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The ranks' launch, recorded instead of started (with the model cache as it is at that moment)."""
    from ftwiz.core.scale import launch

    calls: list[dict] = []

    def record(recipe_path, n_procs, **kwargs):
        from ftwiz.core.models import resolve_model
        from ftwiz.core.recipe import load_recipe

        recipe = load_recipe(recipe_path)
        calls.append({"n_procs": n_procs, "model_dir": resolve_model(recipe.model_name_or_path), **kwargs})
        return 0

    monkeypatch.setattr(launch, "distributed_train", record)
    return calls


def test_download_happens_once_before_the_ranks_start(hub, published, tmp_path: Path, launched: list[dict],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    recipe = _recipe(tmp_path, REPO)
    assert main(["train", str(recipe), "--gpus", "2", "--cpu-procs"]) == 2  # without --download: said once, here
    err = " ".join(capsys.readouterr().err.split())
    assert f"{REPO} is not in the local Hugging Face cache" in err and "--download" in err
    assert launched == []
    assert main(["train", str(recipe), "--gpus", "2", "--cpu-procs", "--download"]) == 0
    assert len(launched) == 1 and (Path(launched[0]["model_dir"]) / "model.safetensors").is_file()
    assert published in str(launched[0]["model_dir"])  # the snapshot the hub published


def test_events_with_gpus_is_refused_before_anything_starts(tiny_qwen2: Path, tmp_path: Path, launched: list[dict],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    assert main(["train", str(_recipe(tmp_path, str(tiny_qwen2))), "--gpus", "2", "--cpu-procs",
                 "--events", "-"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: --events does not reach the processes --gpus launches"), err
    assert launched == []
