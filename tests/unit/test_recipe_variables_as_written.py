"""A recipe's ``variables:`` fill placeholders with the text written in the file, as ``--var`` does.

YAML reads ``version: 1.50`` as the float 1.5, ``ok: yes`` as True and ``at: 12:30`` as 750 (YAML 1.1
base 60); the recipe turned those into "1.5", "True" and "750", so the model was trained on other text than the
user wrote (and than ``ftwiz train --var version=1.50`` trains). Oracle: the texts in the recipe file, read in
the records the data pipeline trains on.
"""

from __future__ import annotations

import json
from pathlib import Path

RECIPE_VARIABLES = "variables:\n  version: 1.50\n  ok: yes\n  at: 12:30\n  code: 0x1F\n  year: 2024\n"
WRITTEN = {"version": "1.50", "ok": "yes", "at": "12:30", "code": "0x1F", "year": "2024"}


def test_variables_are_filled_with_the_text_written_in_the_recipe(tmp_path: Path, tiny_qwen2: Path) -> None:
    import transformers
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.recipe_inputs import parse_var_values

    data = tmp_path / "data.jsonl"
    answer = "v{{version}} ok={{ok}} at {{at}} code {{code}} in {{year}}"
    data.write_text("".join(json.dumps({"instruction": f"question {i}", "output": answer}) + "\n" for i in range(3)),
                    encoding="utf-8")
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(f"model_name_or_path: {json.dumps(str(tiny_qwen2))}\ndataset: [{json.dumps(str(data))}]\n"
                           f"system: 'Release {{{{version}}}}'\nval_size: 0\ntest_size: 0\n{RECIPE_VARIABLES}",
                           encoding="utf-8")
    recipe = load_recipe(recipe_file)
    assert recipe.variables == WRITTEN
    prepared = prepare_for_training(recipe, transformers.AutoTokenizer.from_pretrained(tiny_qwen2))
    records = prepared.splits["train"]
    assert {r["messages"][0]["content"] for r in records} == {"Release 1.50"}
    assert {r["messages"][-1]["content"] for r in records} == {"v1.50 ok=yes at 12:30 code 0x1F in 2024"}
    assert parse_var_values([f"{k}={v}" for k, v in WRITTEN.items()]) == recipe.variables  # as --var reads them
