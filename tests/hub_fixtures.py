"""Fixtures for tests of ``ftwiz pull``: a fake hub on 127.0.0.1 and a cache/endpoint pointing at it.

huggingface-hub reads HF_HUB_OFFLINE and HF_HUB_CACHE once, at import (the suite is offline): the
fixture flips its constants for the test as well as the environment, which is what ftwiz reads when a
pull starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import REPO, FakeHub, model_files


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_ENDPOINT", "")
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))
        yield fake


@pytest.fixture
def published(hub: FakeHub, tiny_qwen2: Path) -> str:
    """The tiny Qwen2 model (config, safetensors, tokenizer) published as TinyOrg/tiny-chat; its commit."""
    return hub.publish(REPO, model_files(tiny_qwen2))
