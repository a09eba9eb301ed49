"""``ftwiz pull`` against a local fake of the Hugging Face Hub: the real huggingface-hub client, no internet.

What a user would notice: only the files training needs arrive (never pickles), the commit is pinned and
found offline afterwards, a dropped connection or a cancel resumes instead of starting over, and a full
disk, a gated repo, a typo or offline mode each say what to do.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from fake_hub import GRANTED_TOKEN, REPO, model_files
from ftwiz.core.errors import FtwizError

pytest_plugins = ["hub_fixtures"]  # the hub, published fixtures


def _snapshot(commit: str) -> Path:
    import os

    return Path(os.environ["HF_HUB_CACHE"]) / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit


def test_pull_fetches_only_needed_files_and_pins_the_commit(hub, published, tiny_qwen2):
    from ftwiz.core.hub.pull import pull
    from ftwiz.core.models import resolve_model

    result = pull(REPO, vram_gb=8)
    assert result.commit == published
    got = {p.name for p in result.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= got
    assert not {"pytorch_model.bin", "README.md", "original"} & got
    for name in got:  # byte for byte what the hub holds
        assert (result.path / name).read_bytes() == (tiny_qwen2 / name).read_bytes()
    assert not any("pytorch_model.bin" in path or "original/" in path for _m, path, _r in hub.requests)
    # ftwiz finds it later without the network, at the pinned commit
    assert resolve_model(REPO) == result.path == _snapshot(published)
    again = pull(REPO, vram_gb=8)
    assert again.downloaded_bytes == 0 and again.commit == published


def test_dropped_connection_resumes_with_a_range_request(hub, published, tiny_qwen2, monkeypatch):
    import huggingface_hub.constants as constants
    from ftwiz.core.hub.pull import pull

    # whole chunks reach the file before the cut (the default 10 MB chunk would swallow this small file)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
    weights = (tiny_qwen2 / "model.safetensors").read_bytes()
    cut = len(weights) // 3
    hub.cut_once["model.safetensors"] = cut
    result = pull(REPO, vram_gb=8)
    assert (result.path / "model.safetensors").read_bytes() == weights
    ranges = hub.lfs_gets(hashlib.sha256(weights).hexdigest())
    assert len(ranges) == 2 and ranges[0] is None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert cut - (1 << 16) < resumed_at <= cut  # what arrived before the cut was not fetched again


def test_cancel_keeps_the_partial_file_and_the_next_pull_resumes(hub, published, tiny_qwen2, monkeypatch):
    import huggingface_hub.constants as constants
    from ftwiz.core.hub.progress import PullCancelled
    from ftwiz.core.hub.pull import prepare_pull, run_pull

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
    weights = (tiny_qwen2 / "model.safetensors").read_bytes()
    assert len(weights) > 4 << 16, "the test needs a file of several chunks"
    seen = []
    with pytest.raises(PullCancelled):
        run_pull(prepare_pull(REPO, vram_gb=8), on_progress=seen.append,
                 cancelled=lambda: bool(seen) and seen[-1].file == "model.safetensors" and seen[-1].file_done > 0)
    partial = next((Path(p) for p in _snapshot(published).parent.parent.glob("blobs/*.incomplete")), None)
    assert partial is not None and 0 < partial.stat().st_size < len(weights)
    kept = partial.stat().st_size
    seen.clear()
    result = run_pull(prepare_pull(REPO, vram_gb=8), on_progress=seen.append)
    assert (result.path / "model.safetensors").read_bytes() == weights
    assert hub.lfs_gets(hashlib.sha256(weights).hexdigest())[-1] == f"bytes={kept}-"
    first = next(p for p in seen if p.file == "model.safetensors")
    assert first.file_done == kept  # the bar starts where the last pull stopped
    assert seen[-1].done == seen[-1].total and result.downloaded_bytes == len(weights) - kept


def test_not_enough_disk_is_refused_before_the_weights(hub, published, monkeypatch):
    from ftwiz.core.hub import preflight
    from ftwiz.core.hub.pull import prepare_pull

    usage = shutil.disk_usage("/")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda _p: usage._replace(free=10_000))
    with pytest.raises(FtwizError) as err:
        prepare_pull(REPO, vram_gb=8)
    assert "only 10.0 kB is free" in err.value.what and "HF_HUB_CACHE" in err.value.fix
    assert not [p for m, p, _r in hub.requests if m == "GET" and p.startswith("/cdn/")]


def test_plan_shows_sizes_fit_and_later_disk_needs(hub, published, monkeypatch):
    from ftwiz.core.hub import preflight
    from ftwiz.core.hub.pull import prepare_pull

    plan = prepare_pull(REPO, vram_gb=8)
    text = "\n".join(plan.summary_lines())
    assert f"{len(plan.selection.files)} files" in text and "licence: apache-2.0" in text
    assert "fits for training" in text and plan.fits
    from ftwiz.core.export.kquant import needs_f16_intermediate

    assert plan.later["merge"] == 2 * plan.parameters and plan.later["Q4_K_M"] < plan.parameters
    assert plan.later.get("F16") == (2 * plan.parameters if needs_f16_intermediate(["Q4_K_M"]) else None)
    # room for the download but not for merge + GGUF afterwards: said up front, not after training
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(preflight.shutil, "disk_usage",
                        lambda _p: usage._replace(free=plan.selection.total_bytes + 1000))
    tight = prepare_pull(REPO, vram_gb=8)
    assert any("merging and exporting to GGUF" in w for w in tight.warnings)


def test_too_big_for_the_gpu_is_said_before_downloading(hub, published):
    from ftwiz.core.hub.pull import prepare_pull

    plan = prepare_pull(REPO, vram_gb=0.001)
    assert plan.fits is False and "does NOT fit" in "\n".join(plan.summary_lines())


def test_gated_repo_says_where_to_accept_the_licence(hub, tiny_qwen2, monkeypatch):
    from ftwiz.core.hub.pull import pull

    hub.publish("meta-llama/Tiny-Gated", model_files(tiny_qwen2), gated=True)
    with pytest.raises(FtwizError) as err:
        pull("meta-llama/Tiny-Gated", vram_gb=8)
    assert "gated" in err.value.what
    assert f"accept the licence at {hub.url}/meta-llama/Tiny-Gated" in err.value.fix
    assert "hf auth login" in err.value.fix and "HF_TOKEN" in err.value.fix
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    with pytest.raises(FtwizError) as err:
        pull("meta-llama/Tiny-Gated", vram_gb=8)
    assert "no access to it yet" in err.value.what
    monkeypatch.setenv("HF_TOKEN", GRANTED_TOKEN)  # HF_TOKEN is what huggingface-hub sends
    assert (pull("meta-llama/Tiny-Gated", vram_gb=8).path / "model.safetensors").is_file()


def test_wrong_id_suggests_the_closest_known_names(hub, published):
    from ftwiz.core.hub.pull import pull

    with pytest.raises(FtwizError) as err:
        pull("Qwen/Qwen2.5-1.5B-Instruc")
    assert "no model 'Qwen/Qwen2.5-1.5B-Instruc'" in err.value.what
    assert "Qwen/Qwen2.5-1.5B-Instruct" in err.value.fix
    with pytest.raises(FtwizError) as err:
        pull(REPO, revision="v9")
    assert "no revision 'v9'" in err.value.what


def test_pickled_only_repo_is_refused_with_the_reason(hub):
    from ftwiz.core.hub.pull import pull

    hub.publish("Old/pickled", {"config.json": b"{}", "pytorch_model.bin": b"x" * 100})
    with pytest.raises(FtwizError) as err:
        pull("Old/pickled")
    assert "only pickled weights (pytorch_model.bin)" in err.value.what and "safetensors" in err.value.fix
    assert not any("pytorch_model.bin" in p for _m, p, _r in hub.requests)


def test_offline_mode_is_a_message_not_a_traceback(hub, monkeypatch):
    import huggingface_hub.constants as constants
    from ftwiz.core.hub.pull import pull

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FtwizError) as err:
        pull(REPO)
    assert "HF_HUB_OFFLINE" in err.value.what + err.value.fix
