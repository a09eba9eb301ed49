"""Shared fixtures: offline environment, isolated ftwiz dirs, and tiny models built once per session.

Nothing here touches the network: tiny models are built from the corpus shipped in the package.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

# Offline and quiet for every test (set before transformers/datasets are imported by any test).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# Tiny models gain nothing from intra-op threads, and spinning OpenMP workers on a busy 2-core CI box
# make each matmul hundreds of times slower. Child processes inherit this too.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per-session cache/data dirs so tests never read or write the user's real ftwiz folders.

    The demo base model cache is shared across test sessions when FTWIZ_TEST_CACHE is set (CI leaves it
    unset, so the build itself is exercised once per run).
    """
    base = tmp_path_factory.mktemp("ftwiz-home")
    dirs = {
        "cache": Path(os.environ.get("FTWIZ_TEST_CACHE") or base / "cache"),
        "data": base / "data",
        "runs": base / "runs",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


@pytest.fixture(autouse=True)
def ftwiz_env(session_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(session_dirs["cache"]))
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(session_dirs["data"]))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(session_dirs["runs"]))
    return session_dirs


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared material beside the checkout (real tokenizers, datasets); tests needing it skip without it."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"the shared material (real tokenizers, datasets) is not beside the checkout at {SHARED_DIR}")
    return SHARED_DIR


def _build(tmp_path_factory: pytest.TempPathFactory, name: str, **spec) -> Path:
    from ftwiz.core.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp(name), **spec)


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2 architecture, ChatML template, tied embeddings, GQA (4 heads, 2 KV heads)."""
    return _build(tmp_path_factory, "tiny-qwen2", arch="qwen2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama architecture, Llama-3 template with BOS, untied embeddings, GQA."""
    return _build(tmp_path_factory, "tiny-llama", arch="llama")


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen3 architecture with head_dim (32) != hidden/heads (16), ChatML template."""
    return _build(tmp_path_factory, "tiny-qwen3", arch="qwen3", head_dim=32)


@pytest.fixture(scope="session")
def demo_base_model(session_dirs: dict[str, Path]) -> Path:
    """The embedded demo's pre-trained base model (built once per session, under a minute)."""
    os.environ["FTWIZ_CACHE_DIR"] = str(session_dirs["cache"])
    from ftwiz.core.tiny import ensure_demo_base_model

    return ensure_demo_base_model()


@pytest.fixture()
def stop_after_data(monkeypatch: pytest.MonkeyPatch) -> list:
    """`ftwiz train` in-process stops after its data step (tests/stopped_flag.py), with pytest's own Ctrl-C
    handling kept; returns the PreparedData each data step made."""
    import ftwiz.core.cli.train as cli_train
    import ftwiz.core.data as data
    import ftwiz.core.train.cancel as cancel_module
    from stopped_flag import StoppedFlag

    monkeypatch.setattr(cancel_module, "CancelFlag", StoppedFlag)  # where ftwiz train takes it from
    monkeypatch.setattr(cli_train, "_install_signal_handlers", lambda *_a, **_k: None)
    prepared: list = []
    real = data.prepare_for_training

    def spy(*args, **kwargs):
        prepared.append(real(*args, **kwargs))
        return prepared[-1]

    monkeypatch.setattr(data, "prepare_for_training", spy)
    return prepared


@pytest.fixture()
def fake_ollama():
    """An in-process Ollama REST server (tests/fake_ollama.py), shut down after the test."""
    from fake_ollama import FakeOllama

    fake = FakeOllama()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture(scope="session")
def phi3_vocab_gguf(shared_dir: Path) -> Path:
    """llama.cpp's vocab-only Phi-3 GGUF: real metadata (chat template, token types), no weights."""
    path = shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf"
    assert path.is_file()
    return path
