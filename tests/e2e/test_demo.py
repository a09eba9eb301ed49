"""`ftwiz demo`: the whole offline pipeline on the embedded tiny model, end to end, on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.rundir import RunDir


@pytest.mark.slow
def test_demo_trains_exports_serves_and_shows_the_learned_style(
        demo_base_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo", "--run-name", "demo-e2e"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    run = RunDir.named("demo-e2e")
    assert run.state() == "completed"
    effect = json.loads((run.eval / "demo_effect.json").read_text())
    # The base model never talks like a pirate; the fine-tuned one does on prompts it never saw.
    assert effect["tuned_rouge_l"] > effect["base_rouge_l"] + 0.3, effect["samples"][:2]
    assert sum("matey" in s["tuned"] for s in effect["samples"]) >= len(effect["samples"]) // 2
    gguf = next(run.export.glob("*-Q8_0.gguf"))
    checks = json.loads(gguf.with_name(gguf.name + ".verify.json").read_text())["checks"]
    assert checks and all(check["passed"] is not False for check in checks), checks
    assert "verification passed" in out and "llama.cpp server reply" in out
    summary = {e["type"]: e for e in map(json.loads, run.events.read_text().splitlines())}
    assert summary["finished"]["summary"]["eval_loss_last"] < summary["finished"]["summary"]["eval_loss_first"]
