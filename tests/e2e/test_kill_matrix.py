"""Kill matrix: every long job killed inside its heavy phase leaves nothing broken behind.

Each case runs one ``ftwiz`` subprocess that stops at a named pause point inside the write
(``ftwiz.core.pause``: the test waits for the marker file, never for a guessed number of seconds), kills it
with SIGKILL (or interrupts it with SIGINT), then checks what a user would see: no file under the final
name, the half-written output present only as a hidden ``.partial``, and the next run of the same command
(in-process, to keep the matrix fast) succeeding, producing a loadable output and removing the leftover.
SIGINT cases also check the message: what was removed, what was kept, the command that continues.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ftwiz.core.atomic import find_partials
from ftwiz.core.cli import main as cli_main

pytestmark = pytest.mark.slow
pytest_plugins = ["hub_fixtures"]  # the fake hub for `ftwiz pull`
REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "recipes" / "demo" / "demo.jsonl"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 demo conversations: enough for three splits, few enough that tokenizing them is instant."""
    path = tmp_path_factory.mktemp("kill-data") / "chats.jsonl"
    path.write_text("".join(DEMO_DATA.read_text(encoding="utf-8").splitlines(keepends=True)[:40]), encoding="utf-8")
    return path


def interrupted(args: list[str], point: str, tmp_path: Path, sig: int = signal.SIGKILL) -> subprocess.CompletedProcess:
    """Run ``ftwiz ARGS`` until it reaches ``point``, then send ``sig``; return its exit and output."""
    marker = tmp_path / f"paused-{point.replace(':', '-')}"
    env = {**os.environ, "FTWIZ_TEST_PAUSE_AT": point, "FTWIZ_TEST_PAUSE_FILE": str(marker), "COLUMNS": "200",
           "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "ftwiz.tui.launcher_main", *args], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            out, err = child.communicate()
            pytest.fail(f"ftwiz {' '.join(args)} never reached {point} (exit {child.returncode}):\n{out}\n{err}")
        time.sleep(0.02)
    child.send_signal(sig)
    out, err = child.communicate(timeout=120)
    return subprocess.CompletedProcess(args, child.returncode, out, err)


def leftovers(root: Path) -> list[str]:
    return [str(item.path.relative_to(root)) for item in find_partials(root)]


def rerun(*args: str) -> None:
    """The next run of the same command, as a user types it (in this process: no second interpreter start)."""
    assert cli_main(list(args)) == 0


def assert_gguf(path: Path, tensors: int | None = None) -> None:
    import gguf

    reader = gguf.GGUFReader(path)  # parses the header and every tensor's extent: a truncated file fails
    assert reader.tensors and (tensors is None or len(reader.tensors) == tensors)
    last = reader.tensors[-1]
    assert last.data_offset + last.n_bytes <= path.stat().st_size


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ftwiz.core.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("kill-base"), arch="llama", init_std=0.1)


@pytest.fixture(scope="module")
def lora_run_template(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished LoRA run: recipe, run card pointing at the base, a peft adapter with non-zero B."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path_factory.mktemp("kill-runs") / "template"
    run.mkdir()
    (run / "recipe.yaml").write_text(f"model_name_or_path: {base}\n")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(base), "method": "lora"}))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)
    peft_model.save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(run / "adapter")
    return run


@pytest.fixture()
def lora_run(lora_run_template: Path, session_dirs: dict[str, Path], request: pytest.FixtureRequest) -> Path:
    name = "kill-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]
    run = session_dirs["runs"] / name
    shutil.rmtree(run, ignore_errors=True)
    return Path(shutil.copytree(lora_run_template, run))


# --- export: F16 and Q8_0 (our converter), a K-quant (ggml quantizes it), the adapter GGUF ----------------

@pytest.mark.parametrize(("quant", "point"), [("F16", "export.tensors"), ("Q8_0", "export.tensors"),
                                              ("Q4_K_M", "write:{name}-Q4_K_M.gguf")])
def test_killed_export_leaves_no_gguf_and_the_next_export_sweeps_the_partial(
        base: Path, tmp_path: Path, quant: str, point: str) -> None:
    point = point.format(name=base.name)  # K-quant: killed once it is written, before the rename
    out = tmp_path / "out"
    args = ["export", str(base), "--quant", quant, "--out", str(out)]
    done = interrupted(args, point, tmp_path)
    assert done.returncode == -signal.SIGKILL
    final = out / f"{base.name}-{quant}.gguf"
    assert not final.exists()
    left = leftovers(out)
    assert left and all(name.startswith(".") and name.endswith(".partial") for name in left)
    if quant == "Q4_K_M":  # written straight from safetensors, or (without ggml's quantizer) by llama.cpp from
        from ftwiz.core.export.kquant import direct_quant_available  # an F16 that is then a leftover too

        assert any("F16.intermediate" in name for name in left) == (not direct_quant_available(quant))
    rerun(*args)
    assert_gguf(final)
    assert leftovers(out) == [] and sorted(p.name for p in out.iterdir()) == [final.name]


def test_killed_adapter_export_leaves_no_adapter_gguf(lora_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapter.gguf"
    args = ["export", str(lora_run), "--adapter-only", "--out", str(out)]
    assert interrupted(args, "write:adapter.gguf", tmp_path).returncode == -signal.SIGKILL
    assert not out.exists() and len(leftovers(tmp_path)) == 1
    rerun(*args)
    assert_gguf(out)
    assert leftovers(tmp_path) == []


# --- merge --------------------------------------------------------------------------------------------------

def test_killed_merge_leaves_no_merged_folder_and_the_next_merge_sweeps_it(lora_run: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    out = tmp_path / "merged"
    args = ["merge", str(lora_run), "--out", str(out)]
    assert interrupted(args, "merge.shard", tmp_path).returncode == -signal.SIGKILL
    assert not out.exists()
    [left] = find_partials(tmp_path)
    assert left.path.is_dir() and left.size > 0 and not left.in_use
    rerun(*args)
    with safe_open(str(out / "model.safetensors"), "pt") as handle:
        assert "model.layers.0.self_attn.q_proj.weight" in set(handle.keys())
    assert leftovers(tmp_path) == []


# --- data prepare ----------------------------------------------------------------------------------------------

def test_killed_data_prepare_leaves_no_half_split(base: Path, small_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    args = ["data", "prepare", str(small_data), "--model", str(base), "--out", str(out)]
    assert interrupted(args, "data.write", tmp_path).returncode == -signal.SIGKILL
    assert not (out / "train.jsonl").exists()
    [left] = leftovers(out)
    assert left.startswith(".train.jsonl.")
    rerun(*args)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and (out / "stats.json").is_file()
    assert leftovers(out) == []


# --- train: killed inside the Trainer's checkpoint save, then inside the final adapter save --------------------

def killed_mid_checkpoint(args: list[str], fifo: Path) -> int:
    """Run ``ftwiz ARGS`` and SIGKILL it while the Trainer writes ``fifo`` (its optimizer.pt).

    A named pipe no one reads stands in for a slow disk: the Trainer has written the adapter weights of
    the checkpoint, then blocks once the pipe's 64 KiB buffer is full (the AdamW state is larger), before
    ``trainer_state.json``. The test sees the bytes arrive (FIONREAD) and kills: no timing guess.
    """
    import fcntl
    import struct
    import termios

    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists, so the writer's open() returns
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "ftwiz.tui.launcher_main", *args], env=env, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while struct.unpack("i", fcntl.ioctl(reader, termios.FIONREAD, b"\0" * 4))[0] == 0:
            if child.poll() is not None or time.monotonic() > deadline:
                child.kill()
                pytest.fail(f"training never wrote its checkpoint's optimizer state:\n{child.communicate()[1]}")
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        os.close(reader)
    return child.returncode


def test_killed_checkpoint_save_and_killed_adapter_save_both_resume(tiny_qwen2: Path, tmp_path: Path,
                                                                      session_dirs: dict[str, Path]) -> None:
    from ftwiz.core.rundir import RunDir

    recipe = {"model_name_or_path": str(tiny_qwen2), "dataset": [str(DEMO_DATA)], "finetuning_type": "lora",
              "max_samples": 16, "cutoff_len": 64, "max_steps": 4, "per_device_train_batch_size": 4,
              "save_steps": 2, "eval_steps": 100, "val_size": 0.0, "test_size": 0.0, "lora_rank": 64,
              "near_dedup_threshold": None, "run_name": "kill-train"}
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    run = RunDir(session_dirs["runs"] / "kill-train")
    shutil.rmtree(run.root, ignore_errors=True)
    (run.checkpoints / "checkpoint-2").mkdir(parents=True)

    # 1. killed while the Trainer saves checkpoint-2: weights written, trainer_state.json not
    assert killed_mid_checkpoint(["train", str(recipe_file)], run.checkpoints / "checkpoint-2" / "optimizer.pt") \
        == -signal.SIGKILL
    half = run.checkpoints / "checkpoint-2"
    assert (half / "adapter_model.safetensors").is_file() and not (half / "trainer_state.json").exists()
    assert run.state() == "running" and not run.adapter.exists()

    # 2. the resume drops the half checkpoint, trains, and is killed while saving the trained adapter
    done = interrupted(["train", "--resume", "kill-train"], "write:adapter", tmp_path)
    assert done.returncode == -signal.SIGKILL
    assert run.checkpoint_steps() == [2, 4] and (half / "trainer_state.json").is_file()
    assert not run.adapter.exists() and [Path(p).name.startswith(".adapter.") for p in leftovers(run.root)] == [True]

    # 3. the next resume starts from checkpoint-4 and finishes; nothing is left over
    rerun("train", "--resume", "kill-train")
    assert run.state() == "completed" and (run.adapter / "adapter_model.safetensors").is_file()
    assert leftovers(run.root) == []


# --- eval -----------------------------------------------------------------------------------------------------

def test_killed_eval_leaves_no_half_report(lora_run: Path, tmp_path: Path) -> None:
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(DEMO_DATA.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    out = tmp_path / "eval"
    args = ["eval", str(lora_run / "adapter"), "--data", str(heldout), "--max-samples", "1", "--max-new-tokens", "4",
            "--no-forgetting", "--out", str(out)]
    assert interrupted(args, "write:report.json", tmp_path).returncode == -signal.SIGKILL
    assert not (out / "report.json").exists() and len(leftovers(out)) == 1
    rerun(*args)
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["samples"]
    assert leftovers(out) == []


# --- pull: killed mid-download (the fake hub serves the weights slowly), the next pull completes -------------

def test_killed_pull_leaves_no_weights_in_the_snapshot_and_the_next_pull_completes(hub, tiny_qwen2: Path) -> None:
    import hashlib

    from fake_hub import REPO as HUB_REPO
    from fake_hub import model_files

    commit = hub.publish(HUB_REPO, model_files(tiny_qwen2))
    weights = (tiny_qwen2 / "model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()
    cache = Path(os.environ["HF_HUB_CACHE"]) / f"models--{HUB_REPO.replace('/', '--')}"
    hub.delay_s = 5.0  # per 64 KiB: the download is still running when the test kills it
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "ftwiz.tui.launcher_main", "pull", HUB_REPO, "--yes"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (hub.lfs_gets(sha) and list(cache.glob("blobs/*.incomplete"))):  # the weights are being written
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail("ftwiz pull never started downloading the weights:\n" + "\n".join(child.communicate()))
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not (cache / "snapshots" / commit / "model.safetensors").exists()  # never a half file in the snapshot
    hub.delay_s = 0.0
    rerun("pull", HUB_REPO, "--yes")
    assert (cache / "snapshots" / commit / "model.safetensors").read_bytes() == weights
    assert list(cache.glob("blobs/*.incomplete")) == []


# --- Ctrl-C: the same guarantees, plus what was kept and how to continue --------------------------------------

def test_ctrl_c_during_export_of_a_run_keeps_the_merged_model_and_says_how_to_continue(lora_run: Path,
                                                                                       tmp_path: Path) -> None:
    args = ["export", lora_run.name, "--quant", "F16"]
    done = interrupted(args, "export.tensors", tmp_path, signal.SIGINT)
    assert done.returncode == 130, done.stderr
    message = " ".join(done.stderr.split())
    assert "removed the unfinished" in message and f"{lora_run.name}-F16.gguf" in message
    assert "kept what was finished" in message and str(lora_run / "merged") in message
    assert f"run the same command again: ftwiz export {lora_run.name} --quant F16" in message
    assert (lora_run / "merged" / "config.json").is_file()
    assert leftovers(lora_run) == [] and not (lora_run / "export" / f"{lora_run.name}-F16.gguf").exists()
    rerun(*args)
    assert_gguf(lora_run / "export" / f"{lora_run.name}-F16.gguf")


@pytest.mark.parametrize("job", ["merge", "data"])
def test_ctrl_c_removes_the_partial_at_once(job: str, lora_run: Path, base: Path, small_data: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    args, point = {"merge": (["merge", str(lora_run), "--out", str(out)], "merge.shard"),
                   "data": (["data", "prepare", str(small_data), "--model", str(base), "--out", str(out)],
                            "data.write")}[job]
    done = interrupted(args, point, tmp_path, signal.SIGINT)
    assert done.returncode == 130, done.stderr
    assert "removed the unfinished" in done.stderr and "run the same command again" in done.stderr
    assert leftovers(tmp_path) == [] and not (out / "config.json").exists() and not (out / "train.jsonl").exists()
