"""The Plan: what the planner recommends and training consumes (the user may edit it).

A contract between ``ftwiz.core.planner`` (which fills it), ``ftwiz.core.train`` (which runs it), the
CLI and the wizard (which show it). Memory parts are in bytes; reasons are plain sentences for a
hobbyist.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MemoryEstimate(BaseModel):
    peak_bytes: int = Field(description="Estimated peak training memory, the sum of the parts")
    parts: dict[str, int] = Field(default_factory=dict, description="Part name -> bytes (documented)")
    budget_bytes: int | None = Field(None, description="Usable memory after the safety margin")


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
    est_seconds_per_epoch: float | None = Field(None, description="An estimate, from assumed throughput")

    @property
    def effective_batch(self) -> int:
        return self.micro_batch * self.grad_accum
