"""A yes/no value where the recipe wants a number is refused naming the line and key: YAML reads yes, no, on,
off, true and false as booleans (yaml.safe_load is the oracle), and pydantic would have read them as 1 and 0
(`lora_rank: yes` trained rank 1, `max_steps: true` one step, silently). Yes/no keys keep taking them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.mark.parametrize("line", ["lora_rank: yes", "max_steps: true", "learning_rate: on", "max_samples: yes",
                                  "seed: false"])
def test_a_yes_no_value_for_a_number_is_refused(tmp_path: Path, line: str) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.recipe import load_recipe

    key = line.split(":")[0]
    assert isinstance(yaml.safe_load(line)[key], bool)  # what YAML hands over
    path = tmp_path / "r.yaml"
    path.write_text(f"model_name_or_path: demo\ndataset: [demo]\nfinetuning_type: lora\n{line}\n", encoding="utf-8")
    with pytest.raises(FtwizError) as refused:
        load_recipe(path)
    text = str(refused.value)
    assert "line 4" in text and f"'{key}'" in text and "not a number" in text


def test_yes_no_keys_still_take_yes_and_no(tmp_path: Path) -> None:
    from ftwiz.core.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("model_name_or_path: demo\ndataset: [demo]\nfinetuning_type: lora\npacking: yes\n"
                    "gradient_checkpointing: off\nmax_steps: 5\n", encoding="utf-8")
    recipe = load_recipe(path)
    assert recipe.packing is True and recipe.gradient_checkpointing is False and recipe.max_steps == 5
