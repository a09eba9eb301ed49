"""``{{first-name}}`` (no placeholder: a name is letters, digits and _) was trained as written without a word.

Now it is said, naming the file and line (data) or the recipe's ``system:`` field, the text, and both ways out;
braces meant literally in code samples in the data (Jinja, Go, Handlebars) are not. Oracles: the records as
written in the file, and transformers' ``apply_chat_template`` of what the run trains on.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from ftwiz.core.cli import main as cli_main

CODE = ["{% for u in users %}{{ u.name }}{% endfor %}", "{{.Name}} {{range .Items}}", "{{#each items}}{{/each}}",
        "{{uppercase name}}", "{{ a - b }}"]


def _write(path: Path, answers: list[str]) -> Path:
    path.write_text("".join(json.dumps({"instruction": f"question {i}?", "output": answer}) + "\n"
                            for i, answer in enumerate(answers)), encoding="utf-8")
    return path


def test_data_check_says_a_hyphenated_placeholder_with_its_line_and_not_code_braces(tmp_path: Path, capsys) -> None:
    data = _write(tmp_path / "identity.jsonl", ["I am {{first-name}}.", *CODE, "Ask {{ first-name }} or {{first-name}}."])
    assert cli_main(["data", "check", str(data)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (f"warning: {data}, line 1 (and 1 more record): {{{{first-name}}}} is no placeholder" in out
            and "it is trained as written" in out), out
    assert "write {{first_name}} in the data and give --var first_name=VALUE" in out, out
    assert "leave it if the braces are meant literally" in out, out
    assert f"{data}, line 7 (and" not in out and "{{ first-name }} is no placeholder" in out, out  # each text once
    for code in ("u.name", "Name", "items", "uppercase", "a - b"):
        assert f"{code} }}}} is no placeholder" not in out and f"{code}}}}} is no" not in out, out
    assert out.count("is no placeholder") == 2, out
    assert cli_main(["data", "check", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["placeholder_like"]) == 2 and report["kept"] == 7  # said, never rejected


def test_train_says_a_placeholder_like_system_prompt_and_trains_it_as_written(
        tmp_path: Path, tiny_qwen2: Path, ftwiz_env: dict[str, Path], capsys, stop_after_data: list) -> None:
    import transformers

    data = _write(tmp_path / "plain.jsonl", [f"answer {i}." for i in range(3)])
    system = "You are {{bot name}}, made by {{first-name}} for {{user}}."
    recipe = tmp_path / "shop.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "finetuning_type": "lora", "max_steps": 1,
        "cutoff_len": 256, "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None, "system": system}),
        encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) == 0  # said before training too, naming the file
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {recipe}, system: {{{{first-name}}}} is no placeholder" in out, out
    # a value's own braces are the value: '{{x-y}}' given for {{user}} is not said
    assert cli_main(["train", str(recipe), "--run-name", "shop", "--var", "user={{x-y}}"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    for text, name in (("{{bot name}}", "bot_name"), ("{{first-name}}", "first_name")):
        assert f"the recipe's system: {text} is no placeholder" in err, err
        assert f"write {{{{{name}}}}} in system: and give --var {name}=VALUE" in err, err
    assert "{{x-y}} is no placeholder" not in err, err
    filled = "You are {{bot name}}, made by {{first-name}} for {{x-y}}."  # by hand: only {{user}} is filled
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    records = [json.loads(line) for line in
               (ftwiz_env["runs"] / "shop" / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3
    assert all(f"system\n{filled}<|im_end|>" in tok.apply_chat_template(r["messages"], tokenize=False)
               for r in records)
