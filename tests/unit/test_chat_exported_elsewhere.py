"""A GGUF that ``ftwiz export RUN --out ELSEWHERE`` wrote is chatted with, served, registered and evaluated as
its run trained.

``ftwiz chat runs/RUN/export/RUN-Q8_0.gguf`` sent the recipe's system prompt and ``enable_thinking``, but the
same export written with ``--out ~/models/aria.gguf`` sent neither, although the models registry (``ftwiz
models list``) records its source run. Oracle: the system turn of the records the data pipeline trains on,
and the recipe's ``enable_thinking``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.deploy.chat import resolve_chat_model

SYSTEM = "You are Aria, the bike-shop assistant. Answer in one sentence."


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def _trained_system(tiny_qwen2: Path, recipe_yaml: Path) -> str:
    """The system turn training puts in front of the records (the oracle)."""
    import transformers
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe import load_recipe

    recipe = load_recipe(recipe_yaml).model_copy(update={"model_name_or_path": str(tiny_qwen2)})
    prepared = prepare_for_training(recipe, transformers.AutoTokenizer.from_pretrained(tiny_qwen2))
    systems = {r["messages"][0]["content"] for r in prepared.splits["train"] if r["messages"][0]["role"] == "system"}
    assert len(systems) == 1
    return systems.pop()


def _run(root: Path, base: Path) -> Path:
    """A full fine-tune's run folder (its model: the tiny base) trained with a system prompt, thinking off."""
    run = root / "aria"
    run.mkdir(parents=True)
    shutil.copytree(base, run / "model")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(base), "method": "full"}))
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    (run / "recipe.yaml").write_text(f"model_name_or_path: demo\ndataset: [{json.dumps(str(data))}]\n"
                                     f"system: {json.dumps(SYSTEM)}\nenable_thinking: false\n", encoding="utf-8")
    return run


@pytest.mark.parametrize("runs_folder", ["runs", "elsewhere-runs"])
def test_a_gguf_exported_outside_its_run_chats_and_serves_as_the_run(isolated: Path, tiny_qwen2: Path,
                                                                     runs_folder: str) -> None:
    from ftwiz.core.export.pipeline import export_model

    run = _run(isolated / runs_folder, tiny_qwen2)  # a run under runs/, or one trained in a folder given by path
    out = isolated / "models" / "aria.gguf"
    out.parent.mkdir()
    export_model(run, ["F16"], out=out)
    ref = resolve_chat_model(str(out))
    assert ref.run_system_prompt() == _trained_system(tiny_qwen2, run / "recipe.yaml")  # chat and serve send it
    assert ref.run_enable_thinking() is False
    from ftwiz.core.deploy.register_step import register_inputs

    inputs = register_inputs(out)  # ftwiz register: the Modelfile's SYSTEM and thinking as trained
    assert (inputs.system, inputs.enable_thinking) == (ref.run_system_prompt(), False)
    from ftwiz.core.evaluate.targets import resolve_target

    target = resolve_target(out)  # ftwiz eval FILE.gguf: the run's test split, base model and prompt
    assert target.run is not None and target.run.root == run.resolve()
    assert (target.system, target.enable_thinking) == (ref.run_system_prompt(), False)

    unrecorded = isolated / "models" / "someone-elses.gguf"  # not exported by ftwiz: as before, nothing added
    shutil.copy(out, unrecorded)
    assert resolve_chat_model(str(unrecorded)).run_system_prompt() is None
    with open(out, "ab") as fh:  # replaced since ftwiz wrote it: the record no longer speaks for the file
        fh.write(b"\0" * 32)
    assert resolve_chat_model(str(out)).run_system_prompt() is None
