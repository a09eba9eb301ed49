"""``{{name}}`` placeholders in a recipe's ``system:`` prompt are filled like the data's, by ``variables:`` and
``ftwiz train --var``, and the filled prompt is what chat, serve and eval send.

The data's placeholders were filled (and an unfilled one refused training), but the system prompt's were not:
``system: "You are {{name}}, made by {{author}}."`` with ``--var name=Aria`` trained every record with the
literal braces, and chat/serve/eval sent them too. Oracle: the prompt filled by hand from the recipe's text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import parse_recipe

SYSTEM = "You are {{name}}, made by {{ author }}. {{name}} answers briefly."
FILLED = "You are Aria, made by Sam. Aria answers briefly."  # SYSTEM filled by hand: the oracle


@pytest.fixture(scope="module")
def tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def _recipe(tmp_path: Path, **fields):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"who are you {i}?", "output": f"an assistant {i}"}) + "\n"
                            for i in range(6)), encoding="utf-8")
    return parse_recipe({"model_name_or_path": "x", "dataset": [str(data)], "system": SYSTEM, "val_size": 0.0,
                         "test_size": 0.0, **fields})


def _systems(prepared) -> set[str]:
    return {r["messages"][0]["content"] for r in prepared.splits["train"] if r["messages"][0]["role"] == "system"}


def test_system_prompt_is_trained_filled(tok, tmp_path: Path) -> None:
    from ftwiz.core.data import prepare_for_training

    recipe = _recipe(tmp_path, variables={"author": "Sam", "name": "Aria"})  # --var name=Aria adds to variables:
    prepared = prepare_for_training(recipe, tok, refuse_placeholders=True)
    assert _systems(prepared) == {FILLED}
    assert all(FILLED in tok.decode(row["input_ids"]) for row in prepared.train)


def test_an_unfilled_system_placeholder_is_refused_naming_the_field_and_variable(tok, tmp_path: Path) -> None:
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe_inputs import refuse_unfilled_placeholders

    recipe = _recipe(tmp_path, variables={"author": "Sam"})
    with pytest.raises(FtwizError) as before_training:  # what `ftwiz train` checks before a run folder is made
        refuse_unfilled_placeholders(recipe, recipe_file="aria.yaml")
    with pytest.raises(FtwizError) as in_training:
        prepare_for_training(recipe, tok, refuse_placeholders=True)
    for exc in (before_training.value, in_training.value):
        assert exc.where is not None and exc.where.field == "system", exc
        assert "{{name}}" in exc.what and "author" not in exc.what, exc.what
        assert "--var name=" in (exc.fix or ""), exc.fix
    allowed = prepare_for_training(recipe.model_copy(update={"allow_placeholders": True}), tok,
                                   refuse_placeholders=True)  # --allow-placeholders: learned as written, as data
    assert _systems(allowed) == {"You are {{name}}, made by Sam. {{name}} answers briefly."}


def test_the_run_keeps_the_filled_prompt_for_chat_serve_and_eval(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.deploy.chat import resolve_chat_model
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.train.runner import open_run

    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    recipe = _recipe(tmp_path, variables={"author": "Sam", "name": "Aria"})
    run, stored, resuming = open_run(recipe, run_name="aria", resume=None)  # the recipe the run writes and trains
    assert not resuming and stored.system == FILLED
    run.root.mkdir(parents=True)
    from ftwiz.core.recipe import dump_recipe

    run.recipe.write_text(dump_recipe(stored), encoding="utf-8")
    (run.root / "export").mkdir()
    (run.root / "export" / "aria-Q8_0.gguf").write_bytes(b"GGUF")
    assert resolve_chat_model("aria").run_system_prompt() == FILLED  # chat and serve
    assert load_recipe(run.recipe).system == FILLED  # eval, register and vllm read the run's recipe
