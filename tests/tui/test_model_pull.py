"""The model step downloads a hub model the user typed: it asks first (size, disk, fit, licence), shows
bytes, speed and time left per file, can be cancelled, resumes, then moves on to the data step.
Against the local fake hub (tests/fake_hub.py): no internet."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fake_hub import REPO

from .helpers import screen_text, wait_until

pytest_plugins = ["hub_fixtures"]  # the hub, published fixtures


async def _type_model_and_continue(pilot, name: str) -> None:
    from ftwiz.tui.screens.model import ModelScreen

    app = pilot.app
    app.goto("model")
    await wait_until(pilot, lambda: isinstance(app.screen, ModelScreen) and bool(app.screen.query("#model"))
                     and app.screen.query_one("#model").value == "demo", what="model step, mounted")
    app.screen.query_one("#model").value = name
    app.screen.action_next()


async def _confirm_download(pilot) -> str:
    from ftwiz.tui.screens.confirm import ConfirmScreen

    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), timeout=60, what="the question")
    question = str(pilot.app.screen.question)
    await pilot.press("y")
    return " ".join(question.split())


def _bar(app):
    return app.screen.query_one("#pull-bar")


@pytest.fixture
def slow_hub(hub, published, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
    hub.delay_s = 0.25  # per 64 KiB: the weights take a couple of seconds, long enough to watch and cancel
    return hub


async def test_download_asks_first_shows_progress_then_continues_to_data(make_app, slow_hub) -> None:
    from ftwiz.tui.screens.data import DataScreen

    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await _type_model_and_continue(pilot, REPO)
        question = await _confirm_download(pilot)
        assert f"{REPO} at" in question and "6 files" in question and "licence: apache-2.0" in question
        assert "free at" in question and "fits for training" in question and "Download" in question
        await wait_until(pilot, lambda: "model.safetensors (" in screen_text(app)
                         and 0 < _bar(app).progress < _bar(app).total, timeout=60, what="progress on the weights")
        text = " ".join(screen_text(app).split())
        assert "file 6 of 6" in text and " of 453.9 kB" in text and "left" in text
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen), timeout=60, what="the data step")
        assert app.state.recipe.model_name_or_path == REPO
        await app.workers.wait_for_complete()  # the data step's preview, before the app closes
        await pilot.pause()


async def test_cancel_keeps_what_arrived_and_continue_resumes(make_app, slow_hub, tiny_qwen2: Path) -> None:
    from ftwiz.tui.screens.data import DataScreen

    weights = (tiny_qwen2 / "model.safetensors").read_bytes()
    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await _type_model_and_continue(pilot, REPO)
        await _confirm_download(pilot)
        await wait_until(pilot, lambda: "model.safetensors (" in screen_text(app) and _bar(app).progress > 4000,
                         timeout=60, what="the weights arriving")
        await pilot.press("c")
        await wait_until(pilot, lambda: "download cancelled" in screen_text(app), timeout=30, what="cancelled")
        assert not isinstance(app.screen, DataScreen)
        slow_hub.delay_s = 0.0
        app.screen.action_next()  # Continue: asked again, and the download picks up where it stopped
        question = await _confirm_download(pilot)
        assert "already here" in question
        await wait_until(pilot, lambda: isinstance(app.screen, DataScreen), timeout=60, what="the data step")
        await app.workers.wait_for_complete()
        await pilot.pause()
    gets = slow_hub.lfs_gets(hashlib.sha256(weights).hexdigest())
    assert gets[0] is None and gets[-1] is not None and gets[-1].startswith("bytes=")


async def test_gated_model_says_where_to_accept_the_licence(make_app, hub, tiny_qwen2: Path) -> None:
    from fake_hub import model_files
    from ftwiz.tui.screens.model import ModelScreen

    hub.publish("meta-llama/Tiny-Gated", model_files(tiny_qwen2), gated=True)
    app = make_app(offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await _type_model_and_continue(pilot, "meta-llama/Tiny-Gated")
        await wait_until(pilot, lambda: "gated model" in screen_text(app), timeout=60, what="the gated message")
        text = " ".join(screen_text(app).split())
        assert f"accept the licence at {hub.url}/meta-llama/Tiny-Gated" in text and "HF_TOKEN" in text
        assert isinstance(app.screen, ModelScreen)  # no question asked, nothing downloaded
        await app.workers.wait_for_complete()


async def test_model_list_marks_downloaded_models_with_size_and_licence(make_app, hub, published) -> None:
    from ftwiz.core.hub.pull import pull
    from ftwiz.tui.screens.model import ModelScreen

    pull(REPO, vram_gb=8)
    app = make_app(offer_resume=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.goto("model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelScreen)
                         and "Models for this machine" in screen_text(app), timeout=60, what="model list")
        lines = {line.split("│")[1].strip(): line for line in screen_text(app).splitlines() if line.count("│") >= 6}
        assert "✓ HF cache" in lines[REPO] and "453.9 kB" in lines[REPO]  # measured in the cache
        assert "not downloaded" in lines["Qwen/Qwen2.5-1.5B-Instruct"] and "~3.1 GB" in lines["Qwen/Qwen2.5-1.5B-Instruct"]
        assert "apache-2.0" in lines["Qwen/Qwen2.5-1.5B-Instruct"]
        assert "llama3.1 (gated)" in lines["meta-llama/Llama-3.1-8B-Instruct"]
        await app.workers.wait_for_complete()
