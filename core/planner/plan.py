"""The Plan: what the planner recommends and training consumes (the user may edit it).

A measurement from ``ftwiz plan --probe`` travels with the plan (``measured``).

A contract between ``ftwiz.core.planner`` (which fills it), ``ftwiz.core.train`` (which runs it), the
CLI and the wizard (which show it). Memory parts are in bytes; reasons are plain sentences for a
hobbyist.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field


class MemoryEstimate(BaseModel):
    peak_bytes: int = Field(description="Estimated peak training memory, the sum of the parts")
    parts: dict[str, int] = Field(default_factory=dict, description="Part name -> bytes (documented)")
    budget_bytes: int | None = Field(None, description="Usable memory after the safety margin")


KEY_FIELDS = ("model", "method", "seq_len", "micro_batch", "grad_ckpt", "lora_rank", "device", "device_name",
              "driver")


class Measurement(BaseModel):
    """One probe of one setup on one machine (see ``ftwiz.core.planner.measured``): bytes, tokens/s."""

    model: str = Field(description="Resolved model folder (or name) the probe loaded")
    method: str
    seq_len: int
    micro_batch: int
    grad_ckpt: bool
    lora_rank: int | None = None
    device: str = Field(description="cuda | mps | cpu")
    device_name: str = ""
    driver: str = ""
    peak_bytes: int = Field(description="What the device (or, on CPU, the process's resident set) peaked at")
    parts: dict[str, int] = Field(default_factory=dict, description="Measured parts, bytes (see probe_child)")
    estimate_bytes: int | None = Field(None, description="The planner's estimate for the same setup")
    budget_bytes: int | None = None
    tokens_per_s: float | None = None
    steps: int = 0
    oom: bool = False
    error: str | None = None
    measured_at: float = Field(default_factory=time.time)

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in KEY_FIELDS)

    @property
    def fits(self) -> bool:
        return not self.oom and self.error is None and (self.budget_bytes is None or
                                                        self.peak_bytes <= self.budget_bytes)


class Plan(BaseModel):
    method: Literal["full", "lora", "qlora"]
    device: Literal["cuda", "mps", "cpu"] = "cpu"
    micro_batch: int = Field(ge=1)
    grad_accum: int = Field(ge=1)
    gradient_checkpointing: bool
    max_seq_len: int = Field(ge=1)
    lora_rank: int | None = None
    lora_alpha: int | None = None
    lora_targets: list[str] = Field(default_factory=list)
    optimizer: str = Field(description="A transformers `optim` name, e.g. paged_adamw_8bit, adamw_torch")
    dtype: Literal["bf16", "fp16", "fp32"] = "fp32"
    fits: bool = True
    estimate: MemoryEstimate
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    est_seconds_per_epoch: float | None = Field(
        None, description="From measured tokens/s when `measured` is set, else from assumed throughput")
    measured: Measurement | None = Field(None, description="This machine's probe of this setup (ftwiz plan --probe)")

    @property
    def effective_batch(self) -> int:
        return self.micro_batch * self.grad_accum
