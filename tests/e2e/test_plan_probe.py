"""``ftwiz plan --probe`` on this CPU: real child processes, real Trainer steps on a tiny model.

The out-of-memory answer comes from the run's own test-only seam (FTWIZ_TEST_OOM_ABOVE_MICRO_BATCH,
raised by the training callback exactly where CUDA would raise it), inherited by the probe's child.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main


@pytest.mark.slow  # two child processes that each import torch and train: about a minute on 2 busy cores
def test_probe_measures_rss_and_tokens_backs_off_on_oom_and_the_next_plan_uses_it(
        tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FTWIZ_TEST_OOM_ABOVE_MICRO_BATCH", "1")
    recipe = tmp_path / "probe.yaml"
    recipe.write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: [demo]\nfinetuning_type: lora\ncutoff_len: 128\n"
                      "effective_batch_size: 2\n", encoding="utf-8")
    code = cli_main(["plan", str(recipe), "--probe", "--probe-steps", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    attempts = out["probe"]["attempts"]
    assert [(a["micro_batch"], a["oom"]) for a in attempts] == [(2, True), (1, False)]
    chosen = out["probe"]["chosen"]
    parts = chosen["parts"]
    assert chosen["peak_bytes"] == parts["peak_rss"] > parts["runtime"] > 0 and parts["model_load"] > 0
    assert chosen["tokens_per_s"] > 0 and chosen["steps"] == 2
    assert (out["micro_batch"], out["grad_accum"], out["fits"]) == (1, 2, True)  # effective batch kept
    assert out["measured"]["peak_bytes"] == chosen["peak_bytes"]
    # The next plan of the same job on this machine -- what `ftwiz train` computes -- uses the measurement.
    monkeypatch.delenv("FTWIZ_TEST_OOM_ABOVE_MICRO_BATCH")
    assert cli_main(["plan", str(recipe), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["measured"]["peak_bytes"] == chosen["peak_bytes"] and again["micro_batch"] == 1
    assert any("measured on this machine" in reason for reason in again["reasons"])


def test_probe_refuses_another_cards_budget_and_a_config_without_weights(
        shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json"
    assert cli_main(["plan", str(config), "--probe", "--vram-gb", "12", "--seq-len", "256"]) == 2
    assert "--probe measures this machine" in capsys.readouterr().err
    assert cli_main(["plan", str(config), "--probe", "--seq-len", "256", "--method", "lora"]) == 2
    assert "the probe needs the model's weights" in capsys.readouterr().err
