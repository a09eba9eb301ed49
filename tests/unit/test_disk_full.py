"""A full disk, on a real small file system: jobs refuse before writing with the numbers, and when the disk
fills during the write they stop with the file system named, remove the partial output and keep every
earlier result (the merged model, an older output, complete checkpoints).

The file system is a size-limited tmpfs that each test mounts and unmounts (root is needed, as in CI);
where mounting is not permitted the tests skip and say so. The disk is filled *during* a job by a thread
that waits for the job's pause point (``ftwiz.core.pause``), writes a filler file over the free space,
then lets the job go on: the ENOSPC the job then meets is the kernel's, not a mock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftwiz.core.atomic import find_partials
from ftwiz.core.cli import main as cli_main


@contextlib.contextmanager
def small_fs(where: Path, mib: int) -> Iterator[Path]:
    """A tmpfs of ``mib`` MiB mounted at ``where`` for the duration of the block."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {mib} MiB tmpfs here ({(mounted.stderr or 'not root').strip()}); "
                    "run as root to test a real full disk")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path, leave: int = 64 * 1024) -> Path:
    """Write a filler file until only ``leave`` bytes are free on ``folder``'s file system."""
    filler = folder / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as fh:
        while (free := os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize) > leave:
            try:
                fh.write(chunk[: min(len(chunk), free - leave)])
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


@contextlib.contextmanager
def fill_disk_at(point: str, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """When this process reaches pause ``point``, fill ``folder``'s file system, then let the job continue."""
    marker = tmp_path / f"paused-{point}"
    monkeypatch.setenv("FTWIZ_TEST_PAUSE_AT", point)
    monkeypatch.setenv("FTWIZ_TEST_PAUSE_FILE", str(marker))
    stop = threading.Event()

    def filler() -> None:
        while not marker.exists():
            if stop.wait(0.02):
                return
        fill(folder)
        marker.with_name(marker.name + ".go").touch()

    thread = threading.Thread(target=filler, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
    assert marker.exists(), f"the job never reached {point}"


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~5M parameters: an F16 GGUF of ~10 MiB, fp32 weights of ~20 MiB (tmpfs-sized, not tiny-sized)."""
    from ftwiz.core.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("dfbase"), arch="llama", hidden_size=512,
                            intermediate_size=1024, num_heads=8, num_kv_heads=4)


@pytest.fixture(scope="module")
def lora_run(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path_factory.mktemp("dfruns") / "df-run"
    run.mkdir()
    (run / "recipe.yaml").write_text(f"model_name_or_path: {model}\n")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(model), "method": "lora"}))
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
                                LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    peft_model.save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(model).save_pretrained(run / "adapter")
    return run


def test_export_refuses_before_writing_when_the_gguf_cannot_fit(model: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with small_fs(tmp_path / "disk", 8) as disk:
        assert cli_main(["export", str(model), "--quant", "F16", "--out", str(disk / "out")]) == 2
        message = said(capsys)
        assert "needs 1" in message and "MiB" in message and f"on {disk}" in message and "free" in message
        assert "nothing was written" in message and "ftwiz clean" in message
        assert not (disk / "out").exists() or not any((disk / "out").iterdir())


def test_data_prepare_refuses_on_a_full_disk_and_writes_no_split(model: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(__file__).resolve().parents[2] / "recipes" / "demo" / "demo.jsonl"
    with small_fs(tmp_path / "disk", 2) as disk:
        fill(disk, leave=256 * 1024)
        assert cli_main(["data", "prepare", str(data), "--model", str(model), "--out", str(disk / "prep")]) == 2
        message = said(capsys)
        assert "the data split train.jsonl needs" in message and f"on {disk}" in message
        assert find_partials(disk) == [] and not (disk / "prep" / "train.jsonl").exists()


def test_export_of_a_run_checks_merge_and_gguf_together_before_merging(lora_run: Path, model: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    weights = sum(p.stat().st_size for p in model.glob("*.safetensors"))
    room = int(weights * 1.25) // 2**20 + 1  # the merged model fits, merged model + F16 GGUF does not
    with small_fs(tmp_path / "disk", room) as disk:
        run = Path(shutil.copytree(lora_run, disk / "df-run", ignore=shutil.ignore_patterns("merged", "export")))
        assert cli_main(["export", str(run), "--quant", "F16"]) == 2
        message = said(capsys)
        assert "the export (the merged model, df-run-F16.gguf) needs" in message and "nothing was written" in message
        assert not (run / "merged").exists() and find_partials(disk) == []  # refused before merging, not after


def test_disk_full_during_export_removes_the_partial_and_keeps_the_merged_model(
        lora_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with small_fs(tmp_path / "disk", 16) as disk:
        out = disk / "gguf"
        with fill_disk_at("export.header", disk, tmp_path, monkeypatch):
            assert cli_main(["export", str(lora_run), "--quant", "F16", "--out", str(out)]) == 2
        message = said(capsys)
        assert "the disk filled up while writing" in message and f"file system {disk}" in message
        assert "the output needs about" in message and "earlier results were kept" in message
        assert find_partials(disk) == [] and sorted(p.name for p in out.iterdir()) == []
        assert (lora_run / "merged" / "config.json").is_file()  # the merge before the export is kept
        (disk / "filler.bin").unlink()
        assert cli_main(["export", str(lora_run), "--quant", "F16", "--out", str(out)]) == 0  # space back: works


def test_disk_full_during_merge_keeps_the_previous_merged_model(
        lora_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with small_fs(tmp_path / "disk", 48) as disk:
        out = disk / "merged"
        assert cli_main(["merge", str(lora_run), "--out", str(out)]) == 0
        before = digest(out)
        with fill_disk_at("merge.shard", disk, tmp_path, monkeypatch):
            assert cli_main(["merge", str(lora_run), "--out", str(out), "--overwrite"]) == 2
        message = said(capsys)
        assert "the disk filled up while writing merged" in message and f"file system {disk}" in message
        assert digest(out) == before and find_partials(disk) == []


def test_disk_full_during_quantize_names_the_file_system(lora_run: Path, model: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_cpp")
    from ftwiz.core.diskspace import DiskFullError
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.quantize import quantize_gguf

    f16 = convert_to_gguf(model, tmp_path / "m-F16.gguf", "F16")
    with small_fs(tmp_path / "disk", 12) as disk:
        with fill_disk_at("quantize.start", disk, tmp_path, monkeypatch), pytest.raises(DiskFullError) as caught:
            quantize_gguf(f16, disk / "m-Q4_K_M.gguf", "Q4_K_M", threads=1)
        assert f"file system {disk}" in str(caught.value)
        assert find_partials(disk) == [] and not (disk / "m-Q4_K_M.gguf").exists()


def test_disk_full_while_saving_a_checkpoint_keeps_the_complete_ones(tmp_path: Path) -> None:
    """What the Trainer leaves when the disk fills mid-save: weights written, trainer_state.json not."""
    from ftwiz.core.diskspace import DiskFullError
    from ftwiz.core.train.checkpoint_space import disk_full_in_training

    with small_fs(tmp_path / "disk", 4) as disk:
        checkpoints = disk / "checkpoints"
        good = checkpoints / "checkpoint-2"
        good.mkdir(parents=True)
        (good / "adapter_model.safetensors").write_bytes(b"w" * 1024)
        (good / "trainer_state.json").write_text("{}")
        half = checkpoints / "checkpoint-4"
        half.mkdir()
        with pytest.raises(OSError) as full, open(half / "optimizer.pt", "wb") as fh:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        error = disk_full_in_training(full.value, disk, checkpoints, trainable=10_000)
        assert isinstance(error, DiskFullError) and f"file system {disk}" in error.what
        assert "--resume" in error.what
        assert not half.exists() and (good / "trainer_state.json").is_file()


def test_a_full_disk_says_what_to_free_even_when_a_library_wrapped_the_error(tmp_path: Path) -> None:
    from ftwiz.core.diskspace import is_disk_full

    with small_fs(tmp_path / "disk", 1) as disk:
        try:
            (disk / "x").write_bytes(b"\0" * (2 << 20))
        except OSError as exc:
            wrapped = RuntimeError(f"Error while serializing: IoError({exc})")  # how safetensors reports it
            assert is_disk_full(exc) and is_disk_full(wrapped)
        else:
            pytest.fail("a 2 MiB write fitted on a 1 MiB file system")
    assert not is_disk_full(PermissionError(errno.EACCES, "Permission denied"))
