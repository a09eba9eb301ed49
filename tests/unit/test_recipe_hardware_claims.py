"""Every card size a shipped recipe's "# Hardware:" line promises is one `ftwiz plan --vram-gb N` fits.

The line is split into clauses at ';'. A clause naming "N GB" (or "N-M GB", "N GB+": the smallest card) is a
promise for that card: the recipe as written, or with the clause's own "cutoff_len M" or "switch to qlora".
It must plan as fitting, with that method and without shortening cutoff_len. Clauses about system RAM are
not card claims. (support-qwen2.5-1.5b-dpo.yaml said "8 GB card" at cutoff_len 2048: the planner needs
10.8 GiB there, since each preference pair is two sequences.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ftwiz.core.recipe import load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CARD = re.compile(r"(\d+)(?:-\d+)?\s*GB\b")


def hardware_claims(path: Path) -> list[tuple[int, dict]]:
    """(card GB, recipe fields the clause changes) for each card claim of the recipe's Hardware line."""
    line = next((text for text in path.read_text(encoding="utf-8").splitlines() if text.startswith("# Hardware:")), "")
    claims = []
    for clause in line.removeprefix("# Hardware:").split(";"):
        card = CARD.search(clause)
        if not card or "RAM" in clause:
            continue
        fields: dict = {}
        if cutoff := re.search(r"cutoff_len:?\s*(\d+)", clause):
            fields["cutoff_len"] = int(cutoff.group(1))
        if method := re.search(r"switch to (qlora|lora|full)", clause):
            fields["finetuning_type"] = method.group(1)
        claims.append((int(card.group(1)), fields))
    return claims


CLAIMS = [(path, gb, fields) for path in sorted(RECIPES.glob("*.yaml")) for gb, fields in hardware_claims(path)]


def test_the_shipped_recipes_make_card_claims() -> None:
    """The parser finds the claims (a header rewording must not silently leave them unchecked)."""
    assert {path.name for path, _, _ in CLAIMS} >= {"support-qwen2.5-1.5b-dpo.yaml", "support-qwen2.5-1.5b.yaml",
                                                    "llama-3.1-8b-qlora-8gb.yaml", "code-qwen2.5-coder-1.5b.yaml"}
    assert ("support-qwen2.5-1.5b-dpo.yaml", 8, {"cutoff_len": 1024}) in [(p.name, gb, f) for p, gb, f in CLAIMS]


@pytest.mark.parametrize(("path", "gb", "fields"), CLAIMS, ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_each_card_a_recipe_claims_fits_the_plan(path: Path, gb: int, fields: dict) -> None:
    from ftwiz.core.planner import plan_recipe
    from ftwiz.core.planner.catalog import CURATED
    from ftwiz.core.planner.spec import spec_from_config

    recipe = load_recipe(path)
    if fields:  # as if written in the file: the planner keeps what a recipe sets
        recipe = parse_recipe({**recipe.model_dump(exclude_unset=True), **fields})
    assert recipe.model_name_or_path in CURATED, "a recipe with a card claim must be plannable offline"
    plan = plan_recipe(recipe, vram_gb=gb, spec=spec_from_config(CURATED[recipe.model_name_or_path]))
    assert plan.fits, f"{path.name} on {gb} GB {fields}: {plan.warnings}"
    assert plan.method == recipe.finetuning_type
    assert plan.max_seq_len >= recipe.cutoff_len
