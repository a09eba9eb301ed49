"""The one seam between ftwiz and GPU vendor APIs (NVML, torch.cuda, torch.backends.mps).

Two readings go through it: the doctor's machine facts (:class:`RawProbe`) and a probe's GPU memory after a
few training steps (:class:`GpuMemoryReading`).

Everything the doctor needs from the GPU stack is read here into a :class:`RawProbe` of plain facts.
:func:`probe_machine` reads a real machine; tests load recorded probes of real machines from JSON
(:meth:`RawProbe.from_json`) and feed them to the same interpretation code. The product never fakes a
GPU: a recorded probe is only ever used by tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class NvmlDevice(BaseModel):
    """One GPU as NVML sees it: NVML ignores CUDA_VISIBLE_DEVICES and orders by PCI bus id."""

    nvml_index: int
    name: str
    uuid: str
    total_bytes: int
    free_bytes: int
    compute_capability: tuple[int, int]
    pci_bus_id: str = ""


class TorchDevice(BaseModel):
    """One GPU as torch sees it (after CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES)."""

    index: int
    name: str
    uuid: str | None = None
    total_bytes: int
    free_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    arch: str | None = Field(None, description="ROCm gcnArchName, e.g. gfx1100")


class RawProbe(BaseModel):
    nvml_ok: bool = False
    nvml_error: str | None = None
    driver_version: str | None = None
    driver_cuda_version: int | None = Field(None, description="NVML's cudaDriverVersion, e.g. 12040")
    nvml_devices: list[NvmlDevice] = Field(default_factory=list)
    torch_installed: bool = True
    torch_version: str | None = None
    torch_cuda_build: str | None = None
    torch_hip_build: str | None = None
    torch_cuda_available: bool = False
    torch_devices: list[TorchDevice] = Field(default_factory=list)
    torch_error: str | None = None
    mps_built: bool = False
    mps_available: bool = False
    unified_memory_bytes: int | None = Field(None, description="Apple Silicon: memory shared with the GPU")
    rocm_smi_devices: list[dict[str, Any]] = Field(default_factory=list)
    cuda_visible_devices: str | None = None
    platform: str = "linux"
    machine_label: str | None = Field(None, description="Recorded fixtures only: which machine this was")

    @classmethod
    def from_json(cls, path: str | Path) -> RawProbe:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def _probe_nvml(raw: RawProbe) -> None:
    try:
        import pynvml
    except ImportError as exc:  # nvidia-ml-py is a dependency; a broken install is reported, not fatal
        raw.nvml_error = f"nvidia-ml-py not importable: {exc}"
        return
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no NVIDIA driver on this machine (the common CPU-only case)
        raw.nvml_error = str(exc)
        return
    try:
        raw.nvml_ok = True
        version = pynvml.nvmlSystemGetDriverVersion()
        raw.driver_version = version.decode() if isinstance(version, bytes) else version
        raw.driver_cuda_version = int(pynvml.nvmlSystemGetCudaDriverVersion())
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            pci = pynvml.nvmlDeviceGetPciInfo(handle).busId
            raw.nvml_devices.append(
                NvmlDevice(
                    nvml_index=i,
                    name=name.decode() if isinstance(name, bytes) else name,
                    uuid=uuid.decode() if isinstance(uuid, bytes) else uuid,
                    total_bytes=int(mem.total),
                    free_bytes=int(mem.free),
                    compute_capability=tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle)),
                    pci_bus_id=pci.decode() if isinstance(pci, bytes) else str(pci),
                )
            )
    finally:
        pynvml.nvmlShutdown()


def _probe_torch(raw: RawProbe) -> None:
    try:
        import torch
    except Exception as exc:
        raw.torch_installed = False
        raw.torch_error = str(exc)
        return
    raw.torch_version = torch.__version__
    raw.torch_cuda_build = torch.version.cuda
    raw.torch_hip_build = getattr(torch.version, "hip", None)
    try:
        raw.torch_cuda_available = bool(torch.cuda.is_available())
        if raw.torch_cuda_available:
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                free, _total = torch.cuda.mem_get_info(i)
                uuid = getattr(props, "uuid", None)
                raw.torch_devices.append(
                    TorchDevice(
                        index=i, name=props.name, uuid=f"GPU-{uuid}" if uuid else None,
                        total_bytes=int(props.total_memory), free_bytes=int(free),
                        compute_capability=None if raw.torch_hip_build else (props.major, props.minor),
                        arch=getattr(props, "gcnArchName", None) if raw.torch_hip_build else None,
                    )
                )
    except Exception as exc:  # e.g. driver too old for this torch build
        raw.torch_error = str(exc)
    mps = getattr(torch.backends, "mps", None)
    raw.mps_built = bool(mps and mps.is_built())
    raw.mps_available = bool(mps and mps.is_available())


def probe_machine() -> RawProbe:
    """Read this machine's GPU facts. Never raises: what cannot be read is recorded as an error."""
    import platform as _platform

    raw = RawProbe(cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                   platform=_platform.system().lower())
    _probe_nvml(raw)
    _probe_torch(raw)
    if raw.mps_available:
        import psutil

        raw.unified_memory_bytes = int(psutil.virtual_memory().total)
    return raw


class GpuMemoryReading(BaseModel):
    """One process's GPU memory as torch's allocator and NVML report it (bytes), read once after a probe.

    NVML's per-process figure is what ``nvidia-smi`` shows for the process: the CUDA context, loaded
    kernels, library workspaces and everything torch's caching allocator holds. Tests load recorded
    readings (:meth:`from_json`); the product only ever reads a real device (:func:`read_gpu_memory`).
    """

    device_name: str
    uuid: str | None = None
    driver_version: str | None = None
    total_bytes: int
    torch_max_allocated_bytes: int
    torch_max_reserved_bytes: int
    torch_reserved_bytes: int = Field(description="Reserved at the moment NVML was read")
    nvml_process_used_bytes: int | None = None
    nvml_device_used_bytes: int | None = None
    nvml_error: str | None = None
    machine_label: str | None = Field(None, description="Recorded fixtures only: which machine this was")

    @classmethod
    def from_json(cls, path: str | Path) -> GpuMemoryReading:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def _nvml_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_gpu_memory(index: int = 0) -> GpuMemoryReading:
    """Read torch's peak counters and NVML's view of this process on CUDA device ``index``.

    The NVML device is found by UUID (NVML ignores CUDA_VISIBLE_DEVICES); NVML failures are recorded,
    not raised, because the allocator's numbers still stand without them.
    """
    import torch

    props = torch.cuda.get_device_properties(index)
    uuid = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None
    reading = GpuMemoryReading(
        device_name=props.name, uuid=uuid, total_bytes=int(props.total_memory),
        torch_max_allocated_bytes=int(torch.cuda.max_memory_allocated(index)),
        torch_max_reserved_bytes=int(torch.cuda.max_memory_reserved(index)),
        torch_reserved_bytes=int(torch.cuda.memory_reserved(index)))
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # ROCm, or no NVML library: allocator numbers only
        reading.nvml_error = str(exc)
        return reading
    try:
        reading.driver_version = _nvml_text(pynvml.nvmlSystemGetDriverVersion())
        handle = (pynvml.nvmlDeviceGetHandleByUUID(uuid.encode()) if uuid
                  else pynvml.nvmlDeviceGetHandleByIndex(index))
        reading.nvml_device_used_bytes = int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        pid = os.getpid()
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == pid and proc.usedGpuMemory is not None:
                reading.nvml_process_used_bytes = int(proc.usedGpuMemory)
        if reading.nvml_process_used_bytes is None:
            reading.nvml_error = "NVML lists no memory for this process (a container without PID namespace access?)"
    except Exception as exc:  # restricted NVML (some clouds/containers): keep what was read
        reading.nvml_error = str(exc)
    finally:
        pynvml.nvmlShutdown()
    return reading
