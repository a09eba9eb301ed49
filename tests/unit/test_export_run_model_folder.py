"""``ftwiz export runs/RUN/merged`` (the run's merged model given as a plain folder, e.g. after ``ftwiz merge``)
writes a GGUF prompted as the run trained, like ``ftwiz export RUN``.

Before, only ``export RUN`` wrote the run's ``ftwiz.*`` keys: the same model exported from its ``merged/`` folder
(or a full fine-tune's ``model/``) carried none, sat outside the run, had no registry link, and chat, register and
eval sent it no system prompt and left thinking to the template, silently. Oracles: the system turn the data
pipeline trains on, and the keys llama.cpp reads from the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SYSTEM = "You are Aria ✓, the bike-shop assistant.\nAnswer in one sentence."


@pytest.mark.parametrize("folder", ["merged", "model"])
def test_a_runs_model_folder_exports_with_the_runs_prompt(tmp_path: Path, tiny_qwen2: Path, folder: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp
    import transformers
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.deploy.chat import resolve_chat_model
    from ftwiz.core.deploy.register_step import register_inputs
    from ftwiz.core.evaluate.targets import resolve_target
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.recipe import load_recipe

    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "aria"
    run.mkdir(parents=True)
    shutil.copytree(tiny_qwen2, run / folder)
    (run / "run_card.json").write_text(json.dumps({"base_model": str(tiny_qwen2), "method": "full"}))
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    (run / "recipe.yaml").write_text(f"model_name_or_path: demo\ndataset: [{json.dumps(str(data))}]\n"
                                     f"system: {json.dumps(SYSTEM)}\nenable_thinking: false\n", encoding="utf-8")
    recipe = load_recipe(run / "recipe.yaml").model_copy(update={"model_name_or_path": str(tiny_qwen2)})
    prepared = prepare_for_training(recipe, transformers.AutoTokenizer.from_pretrained(tiny_qwen2))
    trained = {r["messages"][0]["content"] for r in prepared.splits["train"]}  # the system turn trained on
    assert trained == {SYSTEM}

    out = tmp_path / "elsewhere" / "aria.gguf"
    out.parent.mkdir()
    export_model(run / folder, ["Q8_0"], out=out)
    llm = llama_cpp.Llama(str(out), vocab_only=True, verbose=False)  # the file holds it, as llama.cpp reads it
    assert llm.metadata.get("ftwiz.system_prompt") == SYSTEM and llm.metadata.get("ftwiz.source_run") == "aria"
    shutil.rmtree(run)  # the run is gone, the file stays
    ref = resolve_chat_model(str(out))
    assert (ref.run_system_prompt(), ref.run_enable_thinking()) == (SYSTEM, False)  # chat and serve
    assert (register_inputs(out).system, register_inputs(out).enable_thinking) == (SYSTEM, False)
    target = resolve_target(out)
    assert (target.system, target.enable_thinking) == (SYSTEM, False)


def test_a_model_folder_beside_a_users_own_recipe_is_no_run(tmp_path: Path, tiny_qwen2: Path) -> None:
    """A project folder holding the user's recipe.yaml next to a downloaded model/ is not a run: its export
    carries no run's prompt (the base model was never trained with it)."""
    import llama_cpp
    from ftwiz.core.export.pipeline import export_model

    project = tmp_path / "project"
    shutil.copytree(tiny_qwen2, project / "model")
    (project / "recipe.yaml").write_text(f"model_name_or_path: model\ndataset: [data.jsonl]\n"
                                         f"system: {json.dumps(SYSTEM)}\n", encoding="utf-8")
    out = Path(export_model(project / "model", ["F16"], out=tmp_path / "base.gguf").gguf_paths[0])
    meta = llama_cpp.Llama(str(out), vocab_only=True, verbose=False).metadata
    assert not [key for key in meta if key.startswith("ftwiz.")]
