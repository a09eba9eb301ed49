"""The recipe fingerprint: a field added later with its default keeps older runs resumable."""

from __future__ import annotations

import pytest
import yaml
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import Recipe, dump_recipe, parse_recipe
from ftwiz.core.train.fingerprint import check_resumable, recipe_fingerprint
from pydantic import Field

BASE = {"model_name_or_path": "demo", "dataset": ["data.jsonl"], "lora_rank": 8, "learning_rate": 1e-4}


class RecipeWithNewField(Recipe):
    """Today's recipe plus a field a future ftwiz might add, defaulting to the old behaviour."""

    neftune_alpha: float | None = Field(None)


def test_new_field_at_default_keeps_the_fingerprint_and_resume() -> None:
    before = Recipe(**BASE)
    after = RecipeWithNewField(**BASE)
    assert recipe_fingerprint(after) == recipe_fingerprint(before)
    check_resumable({"recipe": recipe_fingerprint(before)}, {"recipe": recipe_fingerprint(after)}, "run")
    changed = RecipeWithNewField(**BASE, neftune_alpha=5.0)
    assert recipe_fingerprint(changed) != recipe_fingerprint(before)
    with pytest.raises(FtwizError, match="recipe's training settings changed"):
        check_resumable({"recipe": recipe_fingerprint(before)}, {"recipe": recipe_fingerprint(changed)}, "run")


def test_recipe_yaml_written_before_the_stage_fields_resumes_as_sft() -> None:
    # a run directory's recipe.yaml from before stage/pref_*/kto_* existed: every other field spelled out
    full = yaml.safe_load(dump_recipe(Recipe(**BASE)))
    old = {k: v for k, v in full.items() if not k.startswith(("stage", "pref_", "kto_"))}
    old_recipe = parse_recipe(old, source="runs/old/recipe.yaml")
    assert recipe_fingerprint(old_recipe) == recipe_fingerprint(Recipe(**BASE, stage="sft", pref_beta=0.1))
    assert recipe_fingerprint(old_recipe) != recipe_fingerprint(Recipe(**BASE, stage="dpo"))
    # fields that do not shape training still never count
    assert recipe_fingerprint(Recipe(**BASE, run_name="other", logging_steps=3)) == recipe_fingerprint(old_recipe)

