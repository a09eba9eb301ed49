"""Container files: a CUDA training image and a GGUF server image, both non-root with volumes and entrypoints.

No image is built here (no registry access in CI); the files are parsed as a builder would read them, every
COPY source is checked to exist, hadolint lints them when installed, and the serve image's entrypoint is run
as the container would run it, against a real tiny GGUF.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [(parts[0].upper(), parts[1] if len(parts) > 1 else "") for parts in (ln.split(None, 1) for ln in joined)]


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def _args(steps: list[tuple[str, str]]) -> dict[str, str]:
    return dict(arg.split("=", 1) for op, arg in steps if op == "ARG" and "=" in arg)


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for op, arg in stage:
        if op == "ENV":
            env.update(dict(re.findall(r'(\w+)=("[^"]*"|\S+)', arg)))
    return {k: v.strip('"') for k, v in env.items()}


@pytest.mark.parametrize("name", ["Containerfile.train", "Containerfile.serve"])
def test_image_runs_as_a_user_with_volumes_and_an_exec_entrypoint(name: str) -> None:
    steps = instructions(PACKAGING / name)
    assert steps[0][0] in ("ARG", "FROM")
    stage = final_stage(steps)
    users = [arg for op, arg in stage if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    volumes = [json.loads(arg) for op, arg in stage if op == "VOLUME"]
    assert volumes and all(v.startswith("/") for vol in volumes for v in vol)
    entrypoint = [arg for op, arg in stage if op == "ENTRYPOINT"]
    assert len(entrypoint) == 1 and isinstance(json.loads(entrypoint[0]), list)  # exec form: signals arrive
    # every file copied from the build context exists in the repository
    for op, arg in steps:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (REPO / source).exists(), f"{name}: COPY {source} is not in the repository"


def test_train_image_is_cuda_and_starts_ftwiz_with_persistent_cache_and_runs() -> None:
    steps = instructions(PACKAGING / "Containerfile.train")
    args = _args(steps)
    base = final_stage(steps)[0][1].replace("${CUDA_VERSION}", args["CUDA_VERSION"]).replace("${UBUNTU}",
                                                                                          args["UBUNTU"])
    assert base.startswith("docker.io/nvidia/cuda:") and "runtime" in base
    stage = final_stage(steps)
    assert json.loads(next(arg for op, arg in stage if op == "ENTRYPOINT")) == ["ftwiz"]
    env = _env(stage)
    volumes = {v for op, arg in stage if op == "VOLUME" for v in json.loads(arg)}
    assert {env["HF_HOME"], env["FTWIZ_RUNS_DIR"]} <= volumes
    assert any("GGML_CUDA=on" in arg for op, arg in steps if op == "ENV")


@pytest.mark.parametrize("name", ["Containerfile.train", "Containerfile.serve"])
def test_hadolint_finds_no_errors(name: str) -> None:
    if shutil.which("hadolint") is None:
        pytest.skip("hadolint is not installed")
    done = subprocess.run(["hadolint", "--no-color", str(PACKAGING / name)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_serve_entrypoint_serves_a_gguf_as_the_container_would(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.deploy.server import free_port
    from ftwiz.core.export.convert import convert_to_gguf

    gguf = convert_to_gguf(tiny_qwen2, tmp_path / "model.gguf", out_type="F16")
    stage = final_stage(instructions(PACKAGING / "Containerfile.serve"))
    entrypoint = json.loads(next(arg for op, arg in stage if op == "ENTRYPOINT"))
    assert entrypoint[:3] == ["python", "-m", "llama_cpp.server"]
    port = free_port()
    # the image's environment, with the model mounted here and the port free on this machine
    env = os.environ | _env(stage) | {"MODEL": str(gguf), "HOST": "127.0.0.1", "PORT": str(port)}
    server = subprocess.Popen([sys.executable, *entrypoint[1:]], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:
                    models = json.loads(response.read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the server did not answer: {server.stderr.read()[-3000:] if server.stderr else ''}")
                time.sleep(0.5)
        assert models["data"][0]["id"] == str(gguf)  # MODEL came from the environment, as in the image
    finally:
        server.terminate()
        server.wait(timeout=30)
