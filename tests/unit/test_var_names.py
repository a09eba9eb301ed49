"""``--var`` names as users type them: ``--var '{{ name }}=Aria'`` (the placeholder copied from the data, spaces
inside the braces and all) fills ``{{name}}``, and a name no placeholder can have (``first-name``) is refused
saying why, not with a claim the data lacks it.

Before, ``{{ name }}`` was read as the name `` name `` and refused as filling nothing; ``--var first-name=Aria``
on data holding ``{{first-name}}`` was refused with "no {{first-name}} in the data", which the user could see
was false (the text is there, but it is no placeholder: training keeps it literally). Oracle: the records
written by ``ftwiz data prepare``, filled by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftwiz.core.cli import main as cli_main

ROWS = [("Who are you?", "I am {{name}}."), ("Your name?", "{{ name }}, at your service.")]


def _data(tmp_path: Path, rows=ROWS) -> Path:
    path = tmp_path / "identity.jsonl"
    path.write_text("".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in rows), encoding="utf-8")
    return path


def test_a_var_named_as_the_placeholder_is_written_fills_it(tmp_path: Path, tiny_qwen2: Path) -> None:
    out = tmp_path / "prepared"
    assert cli_main(["data", "prepare", str(_data(tmp_path)), "--model", str(tiny_qwen2), "--var", "{{ name }}=Aria",
                     "--out", str(out)]) == 0
    records = [json.loads(line) for name in ("train", "validation", "test")
               for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["messages"][-1]["content"] for r in records) == ["Aria, at your service.", "I am Aria."]


def test_a_name_no_placeholder_can_have_is_refused_saying_why(tmp_path: Path, capsys) -> None:
    data = _data(tmp_path, [("Who are you?", "I am {{first-name}}."), ("And you?", "{{name}} here.")])
    assert cli_main(["data", "check", str(data), "--var", "first-name=Aria", "--var", "name=Bo"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no {{first-name}} in" not in err, err  # it is in the data, as text
    assert "a placeholder name is letters, digits and _" in err and "trained as written" in err, err
    assert "--var first_name=VALUE" in err, err


def test_a_recipe_variable_no_placeholder_can_have_is_said_so(tmp_path: Path) -> None:
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.recipe_inputs import check_placeholders

    data = _data(tmp_path, [("Who are you?", "I am {{first-name}}.")])
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: demo\ndataset: [{json.dumps(str(data))}]\nvariables:\n  first-name: Aria\n",
                      encoding="utf-8")
    warnings = check_placeholders(load_recipe(recipe), recipe_file=str(recipe))
    assert len(warnings) == 1 and "no {{first-name}} in" not in warnings[0], warnings  # it is there, as text
    assert "trained as written" in warnings[0] and "{{first_name}}" in warnings[0], warnings
