"""``ftwiz pull``, ``train --download``, ``plan --download`` and the pinned resume, as a user runs them,
against the local fake hub (tests/fake_hub.py); ModelScope's source selection and its missing client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from fake_hub import REPO

pytest_plugins = ["hub_fixtures"]  # the hub, published fixtures

CLI = [sys.executable, "-m", "ftwiz.tui.launcher_main"]


def ftwiz(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_pull_command_uses_the_endpoint_and_cache_from_the_environment(hub, published, tmp_path, monkeypatch):
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "ftwiz-cache"))  # empty: only the pull can fill it
    dry = ftwiz("pull", REPO, "--dry-run", "--vram-gb", "8")
    assert dry.returncode == 0, dry.stderr
    out = " ".join(dry.stdout.split())
    assert f"{REPO} at {published[:12]} (main) from {hub.url}" in out
    assert "model.safetensors" in out and "pytorch_model.bin" not in out and "fits for training" in out
    assert not [p for m, p, _r in hub.requests if m == "GET" and p.startswith("/cdn/")]  # dry run: no weights
    first = ftwiz("pull", REPO, "--yes", "--vram-gb", "8")
    assert first.returncode == 0, first.stderr
    assert f"at commit {published}" in first.stdout and "downloaded" in first.stdout
    snapshot = Path(os.environ["HF_HUB_CACHE"]) / "models--TinyOrg--tiny-chat" / "snapshots" / published
    assert (snapshot / "model.safetensors").is_file()
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab_cache import cache_key, lookup

    # the model's first export finds its vocabulary already parsed (filled once the download completed)
    assert lookup(cache_key(snapshot, model_params(snapshot).vocab_size)) is not None
    again = ftwiz("pull", REPO, "--yes", "--vram-gb", "8")
    assert again.returncode == 0 and "already in the cache" in again.stdout


def _recipe(tmp_path: Path, run_name: str = "pulled") -> Path:
    data = tmp_path / "data.jsonl"
    rows = [{"instruction": f"Say {i}.", "input": "", "output": f"{i} it is."} for i in range(12)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: {REPO}\ndataset: [{data}]\nfinetuning_type: lora\ncutoff_len: 64\n"
                      "per_device_train_batch_size: 2\nnum_train_epochs: 1\n"
                      f"run_name: {run_name}\n"
                      "save_steps: 1\nexport_quant: [Q8_0]\n")
    return recipe


@pytest.mark.slow
def test_train_offers_the_download_then_pins_and_resume_refuses_changed_weights(hub, published, tmp_path, capsys,
                                                                                ftwiz_env):
    from ftwiz.core.cli import main
    from ftwiz.core.hub.pin import check_resume_pin
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.rundir import RunDir

    recipe = _recipe(tmp_path)
    assert main(["train", str(recipe), "--max-steps", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{REPO} is not in the local Hugging Face cache" in err
    assert "--download" in err and f"ftwiz pull {REPO}" in err
    assert main(["train", str(recipe), "--max-steps", "1", "--download"]) == 0
    run = RunDir(ftwiz_env["runs"] / "pulled")
    assert json.loads(run.run_card.read_text())["base_model_revision"] == published
    # the hub moves on, a later pull updates the cache, the old snapshot is cleaned away
    files = {name: data for name, data in hub.repos[REPO].files.items()}
    files["generation_config.json"] = b'{"do_sample": false}'
    newer = hub.publish(REPO, files)
    assert main(["pull", REPO, "--yes", "--vram-gb", "8"]) == 0
    shutil.rmtree(Path(os.environ["HF_HUB_CACHE"]) / "models--TinyOrg--tiny-chat" / "snapshots" / published)
    capsys.readouterr()
    from ftwiz.core.train.runner import write_status

    write_status(run, "cancelled", step=0)  # a run stopped early: a completed one has nothing to resume
    assert main(["train", "--resume", "pulled"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"trained on {REPO} at commit {published[:12]}" in err and f"holds {newer[:12]} instead" in err
    assert f"ftwiz pull {REPO} --revision {published}" in err
    # the fix works: the exact weights come back, and a resume uses them rather than the newer main
    assert main(["pull", REPO, "--revision", published, "--yes", "--vram-gb", "8"]) == 0
    assert check_resume_pin(run, load_recipe(run.recipe)) == published


def test_ctrl_c_during_the_download_of_train_keeps_what_arrived(hub, published, tmp_path, capsys, monkeypatch,
                                                               ftwiz_env):
    import signal
    import threading

    import huggingface_hub.constants as constants
    from ftwiz.core.cli import main

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
    hub.delay_s = 0.25
    blobs = Path(os.environ["HF_HUB_CACHE"]) / "models--TinyOrg--tiny-chat" / "blobs"

    import hashlib

    # the weights' part file: small files arrive whole at once, and their part files vanish under a look
    weights = blobs / (hashlib.sha256(hub.repos[REPO].files["model.safetensors"]).hexdigest() + ".incomplete")

    def arriving() -> bool:
        try:
            return weights.stat().st_size > 0
        except FileNotFoundError:
            return False

    def press_ctrl_c() -> None:  # once the weights are arriving, as a user would
        while not arriving():
            threading.Event().wait(0.05)
        signal.raise_signal(signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert main(["train", str(_recipe(tmp_path, "cut-short")), "--download"]) == 2
    finally:
        signal.signal(signal.SIGINT, previous)
    err = " ".join(capsys.readouterr().err.split())
    assert "download cancelled; what arrived is kept" in err and "resumes where it stopped" in err
    assert arriving()
    assert not (ftwiz_env["runs"] / "cut-short").exists()  # no run was started on half a model


def test_train_in_a_terminal_shows_the_download_and_asks(hub, published, tmp_path, capsys, monkeypatch):
    import io

    from ftwiz.core.cli import main

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert main(["train", str(_recipe(tmp_path, "asked")), "--max-steps", "1"]) == 2
    captured = capsys.readouterr()
    shown = " ".join((captured.out + captured.err).split())
    assert "6 files, 453.9 kB" in shown and "licence: apache-2.0" in shown
    assert f"{REPO} is not downloaded yet. download 453.1 kB? [Y/n]" in shown  # config.json is already here
    assert not [p for m, p, _r in hub.requests if m == "GET" and p.startswith("/cdn/")]  # "n": no weights


def test_pull_offline_reports_a_cached_model_and_refuses_a_missing_one(hub, published, capsys, monkeypatch):
    import huggingface_hub.constants as constants
    from ftwiz.core.cli import main

    assert main(["pull", REPO, "--yes", "--vram-gb", "8"]) == 0
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    capsys.readouterr()
    assert main(["pull", REPO]) == 0
    assert f"in the cache at commit {published}" in " ".join(capsys.readouterr().out.split())
    assert main(["pull", "TinyOrg/other"]) == 2
    assert "offline mode is on (HF_HUB_OFFLINE)" in " ".join(capsys.readouterr().err.split())


def test_plan_download_fetches_the_model_then_plans_it(hub, published, capsys):
    from ftwiz.core.cli import main

    assert main(["plan", REPO, "--vram-gb", "8"]) == 2
    assert f"ftwiz pull {REPO}" in " ".join(capsys.readouterr().err.split())
    assert main(["plan", REPO, "--vram-gb", "8", "--download"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "fits" in out and "Recommended setup" in out


def test_modelscope_source_without_its_client_says_how_to_install_it(monkeypatch, capsys):
    from ftwiz.core.cli import main

    monkeypatch.setitem(sys.modules, "modelscope", None)  # not installed, whatever this machine has
    assert main(["pull", "Qwen/Qwen3-0.6B", "--source", "modelscope"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "ModelScope's client, which is not installed" in err and "pip install 'ftwiz[modelscope]'" in err


def test_modelscope_source_asks_for_safetensors_only(monkeypatch, tmp_path, capsys):
    from ftwiz.core.cli import main

    calls = []

    def snapshot_download(model_id, revision=None, allow_patterns=None, ignore_patterns=None):
        calls.append((model_id, revision, allow_patterns, ignore_patterns))
        folder = tmp_path / "modelscope" / model_id
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        return str(folder)

    module = types.ModuleType("modelscope.hub.snapshot_download")
    module.snapshot_download = snapshot_download  # type: ignore[attr-defined]
    for name, mod in (("modelscope", types.ModuleType("modelscope")), ("modelscope.hub", types.ModuleType("x")),
                      ("modelscope.hub.snapshot_download", module)):
        monkeypatch.setitem(sys.modules, name, mod)
    assert main(["pull", "Qwen/Qwen3-0.6B", "--source", "modelscope"]) == 0
    (model_id, revision, allow, ignore), = calls
    assert model_id == "Qwen/Qwen3-0.6B" and revision == "master"
    assert "*.safetensors" in allow and "config.json" in allow and "*.bin" in ignore and "*.pth" in ignore
    assert str(tmp_path / "modelscope" / "Qwen/Qwen3-0.6B") in " ".join(capsys.readouterr().out.split())


def test_ctrl_c_while_the_vocabulary_cache_fills_after_a_complete_pull_still_reports_the_download(
        hub, published, tmp_path, capsys, monkeypatch):
    """The download is complete: Ctrl-C in the half second of filling the export's cache skips that fill, and
    the pull reports the model as downloaded (exit 0), not 'stopped ... run the same command to resume'."""
    from ftwiz.core.cli import main
    from ftwiz.core.export import vocab_warm

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "ftwiz-cache"))

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vocab_warm, "warm_vocab_cache", interrupted)
    assert main(["pull", REPO, "--yes", "--vram-gb", "8"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"at commit {published}" in out and "stopped" not in out
