"""`ftwiz recipe validate` catches what `train` would trip on about `template:`, and warns as train does."""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.cli import main as cli_main


def test_validate_rejects_a_missing_template_file_naming_key_and_path(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: demo\ntemplate: ./missing.jinja\n", encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) != 0
    out = capsys.readouterr()
    assert "template" in out.err and "missing.jinja" in out.err and "r.yaml" in out.err
    assert "ok" not in out.out
    (tmp_path / "missing.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}",
                                            encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) == 0  # the same recipe passes once the file exists
    assert "ok" in capsys.readouterr().out


def test_validate_warns_like_train_when_a_named_template_replaces_the_models_own(tiny_llama: Path, tmp_path: Path,
                                                                                    capsys) -> None:
    from ftwiz.core.chat_templates.record import resolve_template
    from transformers import AutoTokenizer

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model_name_or_path: {tiny_llama}\ndataset: demo\ntemplate: alpaca\n", encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) == 0
    out = capsys.readouterr().out
    heard: list[str] = []  # what train's adopt_template warns, for the same tokenizer and value
    resolve_template(AutoTokenizer.from_pretrained(tiny_llama), "alpaca", warn=heard.append)
    assert len(heard) == 1 and "'alpaca'" in heard[0] and "model's own" in heard[0]
    assert "warning" in out and " ".join(heard[0].split()) in " ".join(out.split())
    recipe.write_text(f"model_name_or_path: {tiny_llama}\ndataset: demo\n", encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) == 0  # the model's own template: nothing to warn
    assert "warning" not in capsys.readouterr().out
