"""What ``ftwiz doctor`` finds: typed so the planner, the wizard and ``--json`` read the same thing."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Vendor = Literal["nvidia", "amd", "apple", "none"]


class GpuInfo(BaseModel):
    vendor: Vendor
    index: int = Field(description="Index as the user's frameworks see it (after CUDA_VISIBLE_DEVICES)")
    name: str
    uuid: str | None = None
    total_bytes: int
    free_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    bf16: bool = Field(False, description="Native bf16: compute capability >= 8.0 (or MPS/ROCm support)")
    flash_attention_2: bool = False


class Problem(BaseModel):
    """Something that will hurt, with the one-line fix."""

    severity: Literal["error", "warning", "info"]
    what: str
    fix: str


class BackendStatus(BaseModel):
    name: str
    ok: bool
    version: str | None = None
    detail: str = ""


class HardwareReport(BaseModel):
    gpus: list[GpuInfo] = Field(default_factory=list)
    driver_version: str | None = None
    driver_cuda_version: str | None = Field(None, description="Highest CUDA the driver supports (NVML)")
    torch_version: str | None = None
    torch_cuda_version: str | None = None
    torch_hip_version: str | None = None
    torch_sees_gpu: bool = False
    mps_available: bool = False
    cpu_model: str = ""
    cpu_cores: int = 0
    ram_total_bytes: int = 0
    ram_available_bytes: int = 0
    disk_free_bytes: dict[str, int] = Field(default_factory=dict, description="Path -> free bytes")
    backends: list[BackendStatus] = Field(default_factory=list)
    hf_cache: str = ""
    hf_offline: bool = False
    problems: list[Problem] = Field(default_factory=list)

    @property
    def best_gpu(self) -> GpuInfo | None:
        return max(self.gpus, key=lambda g: g.total_bytes, default=None)

    @property
    def device(self) -> Literal["cuda", "mps", "cpu"]:
        """Where training will run: CUDA (NVIDIA or ROCm) when torch sees it, then MPS, else CPU."""
        if self.torch_sees_gpu and any(g.vendor in ("nvidia", "amd") for g in self.gpus):
            return "cuda"
        if self.mps_available:
            return "mps"
        return "cpu"
