"""``ftwiz train dpo.yaml --from SFT_RUN`` continues the SFT adapter in the chat format it learned.

A DPO recipe that named another ``template:`` (or none, where the SFT run named one; or another
``enable_thinking``) trained the same adapter on a second chat format without a word, and export served only
the second. Oracle: the SFT run's card (the template its adapter was trained with) and the DPO recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.chat_templates import NAMED_TEMPLATES
from ftwiz.core.chat_templates.continuation import check_continuation
from ftwiz.core.errors import FtwizError

OWN = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def _sft_run(root: Path, *, source: str, name: str | None, template: str, thinking: bool | None = None) -> Path:
    (root / "adapter").mkdir(parents=True)
    (root / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (root / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    (root / "run_card.json").write_text(json.dumps({
        "run_name": root.name, "chat_template": template, "template_source": source, "template_name": name,
        "enable_thinking": thinking}), encoding="utf-8")
    return root / "adapter"


def test_a_different_template_is_refused_with_the_one_to_set(tmp_path: Path) -> None:
    adapter = _sft_run(tmp_path / "sft", source="named", name="alpaca", template=NAMED_TEMPLATES["alpaca"])
    check_continuation(adapter, "alpaca", None)  # the same named template: fine
    for template in (None, "chatml"):
        with pytest.raises(FtwizError, match="second chat format") as info:
            check_continuation(adapter, template, None)
        assert "template: alpaca" in (info.value.fix or "")


def test_the_models_own_template_continues_and_thinking_must_match(tmp_path: Path) -> None:
    adapter = _sft_run(tmp_path / "sft", source="model", name=None, template=OWN)
    check_continuation(adapter, None, None)
    check_continuation(adapter, OWN, None)  # the same text given inline renders the same format
    with pytest.raises(FtwizError, match="second chat format") as info:
        check_continuation(adapter, "alpaca", None)
    assert "remove `template:`" in (info.value.fix or "")
    with pytest.raises(FtwizError, match="enable_thinking"):
        check_continuation(adapter, None, False)


def test_train_from_refuses_before_anything_loads(tiny_qwen2: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main as cli_main

    runs = tmp_path / "runs"
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(runs))
    _sft_run(runs / "sft", source="model", name=None, template=OWN)
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}) + "\n", encoding="utf-8")
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: [{data}]\nstage: dpo\ntemplate: alpaca\n"
                      "run_name: dpo\n", encoding="utf-8")
    assert cli_main(["train", str(recipe), "--from", "sft"]) == 2
    err = capsys.readouterr().err
    assert "second chat format" in err and "remove `template:`" in err
    assert sorted(p.name for p in runs.iterdir()) == ["sft"]  # no run folder was started
