"""Recipe schema: strict, helpful errors; every shipped recipe validates."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml
from ftwiz.core.cli import main as cli_main
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import Recipe, load_recipe, parse_recipe, recipe_template

MINIMAL = {"model_name_or_path": "demo", "dataset": ["demo"]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_recipe_gets_sensible_defaults() -> None:
    recipe = parse_recipe(dict(MINIMAL))
    assert recipe.finetuning_type == "qlora"
    assert recipe.resolved_lora_alpha == 2 * recipe.lora_rank
    assert recipe.per_device_train_batch_size is None  # left to the planner


def test_llamafactory_style_lora_with_4bit_means_qlora() -> None:
    recipe = parse_recipe({**MINIMAL, "finetuning_type": "lora", "quantization_bit": 4, "dataset": "a.json,b.json"})
    assert recipe.finetuning_type == "qlora"
    assert recipe.dataset == ["a.json", "b.json"]


def test_unknown_key_names_the_line_and_the_closest_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "model_name_or_path: demo\ndataset: [demo]\nlearning_rat: 0.001\n")
    with pytest.raises(FtwizError) as info:
        load_recipe(path)
    message = str(info.value)
    assert "learning_rat" in message and "did you mean 'learning_rate'" in message
    assert "line 3" in message and str(path) in message


def test_wrong_type_is_reported_with_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "model_name_or_path: demo\ndataset: [demo]\nlora_rank: eight\n")
    with pytest.raises(FtwizError) as info:
        load_recipe(path)
    assert "lora_rank" in str(info.value) and "eight" in str(info.value)


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(FtwizError, match="missing required key 'dataset'"):
        load_recipe(_write(tmp_path, "model_name_or_path: demo\n"))


def test_missing_file_and_unreadable_yaml(tmp_path: Path) -> None:
    with pytest.raises(FtwizError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(FtwizError, match="line [23]"):
        load_recipe(_write(tmp_path, "model_name_or_path: demo\ndataset: [demo\n  bad: : :\n"))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FtwizError, match="cannot read"):
        load_recipe(binary)


def test_impossible_split_is_refused() -> None:
    with pytest.raises(FtwizError, match="val_size"):
        parse_recipe({**MINIMAL, "val_size": 0.6, "test_size": 0.5})


def test_template_lists_every_key_and_round_trips(tmp_path: Path) -> None:
    text = recipe_template()
    data = yaml.safe_load(text)
    assert set(data) == set(Recipe.model_fields)
    Recipe.model_validate(data)


def test_recipe_cli_new_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "mine.yaml"
    assert cli_main(["recipe", "new", str(target)]) == 0
    assert cli_main(["recipe", "validate", str(target)]) == 0
    target.write_text("my edits", encoding="utf-8")
    assert cli_main(["recipe", "new", str(target)]) == 2
    assert target.read_text(encoding="utf-8") == "my edits"
    assert "already exists" in capsys.readouterr().err


def shipped_recipes() -> list[Path]:
    root = resources.files("ftwiz.recipes")
    return sorted(Path(str(p)) for p in root.iterdir() if str(p).endswith(".yaml"))


def test_recipes_are_shipped() -> None:
    names = {p.name for p in shipped_recipes()}
    assert "demo.yaml" in names and len(names) >= 6, names


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: p.name)
def test_every_shipped_recipe_validates_and_says_how_to_run_it(path: Path) -> None:
    recipe = load_recipe(path)
    header = path.read_text(encoding="utf-8").splitlines()[:8]
    assert header[0].startswith("#"), "a shipped recipe opens with a comment saying what it is for"
    assert any("ftwiz train" in line for line in header), "the header says the command to run it"
    assert recipe.model_name_or_path


CARD_SIZED = [p for p in shipped_recipes() if re.search(r"-(\d+)gb$", p.stem)]


@pytest.mark.parametrize("path", CARD_SIZED, ids=lambda p: p.name)
def test_a_recipe_named_for_a_card_size_plans_as_fitting_that_card_with_its_own_settings(path: Path) -> None:
    """'...-8gb.yaml' is a promise: the planner must fit it on that card without shortening or downgrading it."""
    from ftwiz.core.planner import plan_recipe
    from ftwiz.core.planner.catalog import CURATED
    from ftwiz.core.planner.spec import spec_from_config

    gib = int(re.search(r"-(\d+)gb$", path.stem).group(1))
    recipe = load_recipe(path)
    assert recipe.model_name_or_path in CURATED, "a card-sized recipe's model must be plannable offline"
    plan = plan_recipe(recipe, vram_gb=gib, spec=spec_from_config(CURATED[recipe.model_name_or_path]))
    assert plan.fits, plan.warnings
    assert plan.estimate.peak_bytes <= plan.estimate.budget_bytes
    assert plan.method == recipe.finetuning_type and plan.max_seq_len >= (recipe.cutoff_len or 0)
    assert plan.micro_batch >= (recipe.per_device_train_batch_size or 1)
    if recipe.gradient_checkpointing is not None:
        assert plan.gradient_checkpointing == recipe.gradient_checkpointing
