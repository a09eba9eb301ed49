"""The demo model's one-time build is shown by any verb that triggers it, not only by `ftwiz demo`.

The first `ftwiz plan my.yaml` on 'demo' printed nothing for 1 min 49 s while the model was pre-trained.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ftwiz.core.build_reports import report_builds_to
from ftwiz.core.cli import main as cli_main


def test_first_plan_on_demo_says_it_is_building_the_model(tiny_qwen2: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import ftwiz.core.tiny.demo as demo

    # the tiny Qwen2 stands in for the built model (pre-training the real one takes a minute)
    monkeypatch.setattr(demo, "demo_base_model_dir", lambda: tmp_path / "demo-base")
    monkeypatch.setattr(demo, "demo_base_model_ready", lambda: (tmp_path / "demo-base" / "config.json").is_file())
    monkeypatch.setattr(demo, "build_tiny_model", lambda out, _spec: shutil.copytree(tiny_qwen2, out,
                                                                                     dirs_exist_ok=True))
    monkeypatch.setattr(demo, "_pretrain", lambda *_args: None)
    try:
        assert cli_main(["plan", "demo", "--seq-len", "64"]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "building the demo model" in err and "the demo model is ready" in err
        assert cli_main(["plan", "demo", "--seq-len", "64"]) == 0  # built: nothing more to say
        assert "building the demo model" not in capsys.readouterr().err
    finally:
        report_builds_to(None)
