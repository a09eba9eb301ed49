"""ftwiz's QLoRA preparation keeps the frozen 16-bit parts 16-bit (peft's k-bit preparation makes them fp32:
on Llama-3.1-8B that is +2 GB of weights and an fp32 residual stream, the difference between fitting 8 GB or not)."""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.planner.estimator import TrainSetup
from ftwiz.core.planner.plan import MemoryEstimate, Plan
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.train.model_setup import apply_lora


def _frozen_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "lora_" not in n)


def test_qlora_adapter_trains_only_lora_and_leaves_embeddings_lm_head_and_norms_in_bf16(tiny_llama: Path) -> None:
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    recipe = parse_recipe({"model_name_or_path": str(tiny_llama), "dataset": ["demo"], "finetuning_type": "qlora",
                           "lora_rank": 8})
    plan = Plan(method="qlora", device="cuda", micro_batch=1, grad_accum=1, gradient_checkpointing=True,
                max_seq_len=64, lora_rank=8, lora_alpha=16, optimizer="paged_adamw_8bit", dtype="bf16",
                estimate=MemoryEstimate(peak_bytes=0))
    model = apply_lora(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16), recipe, plan)
    params = dict(model.named_parameters())
    trainable = [n for n, p in params.items() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {p.dtype for n, p in params.items() if "lora_" not in n} == {torch.bfloat16}
    assert any("embed_tokens" in n for n in params) and any("lm_head" in n for n in params)

    # the oracle for what the planner's kbit_upcast models: peft's preparation doubles the frozen 16-bit bytes
    peft_prepared = prepare_model_for_kbit_training(AutoModelForCausalLM.from_pretrained(tiny_llama,
                                                                                          dtype=torch.bfloat16))
    assert _frozen_bytes(peft_prepared) == 2 * _frozen_bytes(model)
    assert not TrainSetup(method="qlora", seq_len=64).kbit_upcast  # ftwiz's plans: no upcast
