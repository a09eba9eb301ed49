"""Step events report the GPU's own memory figure through the hardware seam, on recorded machines."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.hardware.probe import GpuMemoryReading

MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    """torch's allocator counters on device 1, and the seam answering with a recorded reading."""
    import torch
    from ftwiz.core.hardware import probe

    asked: list[int] = []
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 7 << 30)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: 8 << 30)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: 10 << 30)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)

    def use(reading: GpuMemoryReading) -> list[int]:
        monkeypatch.setattr(probe, "read_gpu_memory", lambda index=0: asked.append(index) or reading)
        return asked

    return use


def test_the_device_figure_is_nvmls_reading_of_the_current_device(fake_cuda) -> None:
    from ftwiz.core.train.callbacks import memory_snapshot

    reading = GpuMemoryReading.from_json(MACHINES / "readings" / "rtx4090_after_probe.json")
    asked = fake_cuda(reading)
    snap = memory_snapshot("cuda")
    assert asked == [1]  # the device training runs on, not NVML's device 0
    assert snap["mem_device_used_bytes"] == reading.nvml_device_used_bytes
    assert snap["mem_reserved_bytes"] == 8 << 30 and snap["mem_peak_bytes"] == 10 << 30


def test_without_nvml_the_allocator_numbers_still_stand(fake_cuda) -> None:
    from ftwiz.core.train.callbacks import memory_snapshot

    recorded = GpuMemoryReading.from_json(MACHINES / "readings" / "rtx4090_no_process_info.json")
    fake_cuda(recorded.model_copy(update={"nvml_device_used_bytes": None, "nvml_process_used_bytes": None,
                                          "nvml_error": "NVML Shared Library Not Found"}))
    snap = memory_snapshot("cuda")
    assert "mem_device_used_bytes" not in snap
    assert snap["mem_allocated_bytes"] == 7 << 30 and snap["rss_bytes"] > 0
