"""A run folder's recipe.yaml reads back exactly what the user gave: PyYAML wrote a system prompt holding U+0085
(NEL) single-quoted with the NEL raw, and read it back as a space, so the prompt that chat, register and export
use (core/trained_context.context_of_run) was no longer the one trained with. Oracle: the original strings."""

from __future__ import annotations

from pathlib import Path

import pytest

TEXTS = {
    "NEL": "Be brief.\u0085Always answer in English.",
    "NEL at the end": "Be brief.\u0085",
    "line separator": "Line one\u2028line two",
    "paragraph separator": "Part one\u2029part two",
    "carriage return": "one\rtwo\r\nthree\r",
    "tabs": "\tcol 1\tcol 2\t",
    "trailing spaces": "You are Aria.   ",
    "leading and trailing newlines": "\n\nYou are Aria.\n\n",
    "everything at once": "\n \t\u0085\u2028\u2029\r\n You are Aria. \t\n",
}


@pytest.mark.parametrize("text", list(TEXTS.values()), ids=list(TEXTS))
def test_the_run_folder_recipe_keeps_every_string_exact(tmp_path: Path, text: str) -> None:
    from ftwiz.core.atomic import write_text_atomic
    from ftwiz.core.recipe import Recipe, dump_recipe, load_recipe
    from ftwiz.core.rundir import RunDir
    from ftwiz.core.trained_context import context_of_run

    recipe = Recipe(model_name_or_path="demo", dataset=["demo"], system=text, variables={"name": text},
                    template="{{ messages[0]['content'] }}" + text)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    write_text_atomic(run.recipe, dump_recipe(recipe))  # as core/train/runner.py saves it
    stored = load_recipe(run.recipe)
    assert (stored.system, stored.variables["name"]) == (text, text)
    assert stored.template == "{{ messages[0]['content'] }}" + text
    assert context_of_run(run.root).system == text  # what chat, register and export put in front of a chat
