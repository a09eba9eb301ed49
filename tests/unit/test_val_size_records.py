"""``val_size: 100`` in a LLaMA-Factory recipe holds out 100 records (it reads a value above 1 as a number of
records); ftwiz refused it as "less than 1", so such recipes could not be ported. A share below 1 is read as before.
And a sum of shares that leaves nothing to train on names both values, the default test_size included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import prepare_for_training
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import parse_recipe


@pytest.fixture(scope="module")
def tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


def _recipe(tmp_path: Path, records: int, **fields):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"What is {i} plus {i}?", "output": f"It is {2 * i}."}) + "\n"
                            for i in range(records)), encoding="utf-8")
    return parse_recipe({"model_name_or_path": "demo", "dataset": [str(data)], "near_dedup_threshold": None,
                         "cutoff_len": 128, **fields})


def test_a_whole_number_val_size_holds_out_that_many_records(tok, tmp_path: Path) -> None:
    prepared = prepare_for_training(_recipe(tmp_path, 40, val_size=7, test_size=0.0), tok)
    assert len(prepared.splits["validation"]) == 7 and len(prepared.splits["train"]) == 33
    # a count is held out even from a small dataset, where a share holds out nothing
    prepared = prepare_for_training(_recipe(tmp_path, 6, val_size=2), tok)
    assert len(prepared.splits["validation"]) == 2 and len(prepared.splits["train"]) == 4
    prepared = prepare_for_training(_recipe(tmp_path, 40, val_size=0.25, test_size=0.0), tok)  # a share, as before
    assert len(prepared.splits["validation"]) == 10


def test_a_count_that_leaves_nothing_to_train_on_is_refused_naming_val_size(tok, tmp_path: Path) -> None:
    with pytest.raises(FtwizError) as caught:
        prepare_for_training(_recipe(tmp_path, 6, val_size=6), tok)
    assert "val_size: 6 holds out 6 records, but the data has 6 usable records" in caught.value.what
    assert caught.value.where == "recipe: val_size" and "fewer than 6" in (caught.value.fix or "")


@pytest.mark.parametrize(("fields", "words"), [
    ({"val_size": 30.5}, "30.5 is neither a share of the records (below 1, e.g. 0.1) nor a whole number of records"),
    ({"val_size": -1}, "-1.0 is no validation size"),
    ({"val_size": 0.95}, "val_size 0.95 + test_size 0.1 (the default) = 1.05 leaves nothing to train on"),
    ({"val_size": 0.5, "test_size": 0.5}, "val_size 0.5 + test_size 0.5 = 1 leaves nothing to train on"),
])
def test_values_that_are_no_held_out_size_say_why(tmp_path: Path, fields: dict, words: str) -> None:
    with pytest.raises(FtwizError) as caught:
        _recipe(tmp_path, 1, **fields)
    assert words in str(caught.value), str(caught.value)
