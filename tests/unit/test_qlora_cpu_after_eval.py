"""QLoRA on a CPU with AVX512-BF16 (AMD Zen 4, Intel Sapphire Rapids) crashed at its first training step with
bitsandbytes 0.50 ("a view of a leaf Variable that requires grad is being used in an in-place operation"): the
packing isolation check (and any evaluation pass) runs the model in eval mode without grad, bitsandbytes then
repacks each 4-bit weight for its inference kernel and never packs it back for training. ftwiz keeps the
training layout for the model it trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.planner.plan import MemoryEstimate, Plan
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.train.model_setup import build_model

bnb_modules = pytest.importorskip("bitsandbytes.nn.modules")


def _cpu_qlora(model_dir: Path):
    recipe = parse_recipe({"model_name_or_path": str(model_dir), "dataset": ["demo"], "finetuning_type": "qlora",
                           "lora_rank": 8})
    plan = Plan(method="qlora", device="cpu", micro_batch=1, grad_accum=1, gradient_checkpointing=True,
                max_seq_len=64, lora_rank=8, lora_alpha=16, optimizer="adamw_torch", dtype="fp32",
                estimate=MemoryEstimate(peak_bytes=0))
    return build_model(model_dir, recipe, plan)


def test_a_cpu_qlora_model_does_not_take_the_inference_only_layout(tiny_qwen2: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # as on a CPU that has the instructions, whatever CPU runs this test
    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True, raising=False)
    model = _cpu_qlora(tiny_qwen2)
    layers = [m for m in model.modules() if isinstance(m, bnb_modules.Linear4bit)]
    assert layers, "the tiny model should have 4-bit layers"
    assert not any(getattr(m, "support_avx512bf16_for_cpu", False) for m in layers)


def test_a_cpu_qlora_model_trains_after_the_packing_check(tiny_qwen2: Path) -> None:
    import torch
    from ftwiz.core.train.packing import check_isolation

    model = _cpu_qlora(tiny_qwen2)
    model.train()
    check_isolation(model, dtype="fp32")  # eval mode, no grad: where bitsandbytes repacked the weights
    ids = torch.arange(3, 19)[None]
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()  # raised RuntimeError inside bitsandbytes on an AVX512-BF16 CPU
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_" in n)
