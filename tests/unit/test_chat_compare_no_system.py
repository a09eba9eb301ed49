"""``ftwiz chat TUNED --compare BASE``: a fine-tune without a system prompt compared with a BASE that records
one (an earlier run's GGUF, whose ``ftwiz.system_prompt`` key names its own) asked the base with that prompt,
so the two columns answered different questions. Oracle: the system prompt the fine-tune is asked with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def test_compare_base_gets_no_system_when_the_fine_tune_has_none(tmp_path: Path, tiny_qwen2: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import ftwiz.core.deploy.chat as chat
    from ftwiz.core.cli import main
    from ftwiz.core.export.pipeline import export_model

    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "zed"  # a full fine-tune's run trained with a system prompt: the "BASE" here
    run.mkdir(parents=True)
    shutil.copytree(tiny_qwen2, run / "model")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(tiny_qwen2), "method": "full"}))
    (tmp_path / "d.jsonl").write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n", encoding="utf-8")
    (run / "recipe.yaml").write_text(f"model_name_or_path: demo\ndataset: [{json.dumps(str(tmp_path / 'd.jsonl'))}]"
                                     "\nsystem: You are Zed.\n", encoding="utf-8")
    base = export_model(run, ["F16"]).gguf_paths[0]
    tuned = export_model(tiny_qwen2, ["F16"], out=tmp_path / "plain-F16.gguf").gguf_paths[0]
    asked: dict[str, str | None] = {}

    class Recorder:
        def __init__(self, model, *, system=None, **_kwargs) -> None:
            asked[str(model)] = system
            self.label, self.system, self.last_finish_reason = Path(str(model)).name, system, "stop"

        def reply(self, text: str) -> str:
            return "ok"

        def close(self) -> None:
            pass

    monkeypatch.setattr(chat, "ChatSession", Recorder)
    assert main(["chat", tuned, "--once", "Hi", "--compare", base]) == 0
    assert not asked[tuned] and not asked[base]  # neither gets a system turn
    assert main(["chat", base, "--once", "Hi", "--compare", tuned]) == 0
    assert asked == {base: "You are Zed.", tuned: "You are Zed."}
