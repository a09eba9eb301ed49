"""What `ftwiz plan` tells a user, checked against arithmetic from the configs and published parameter counts.

Each test is a silent wrong result a first-time user found: a number or a sentence the plan printed that a
user would trust and that was not true.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.planner import load_model_spec, plan_recipe
from ftwiz.core.recipe import parse_recipe

GIB = 1024**3


@pytest.fixture(scope="module")
def llama8b(shared_dir: Path):
    return load_model_spec(shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json")


def recipe(**fields):
    return parse_recipe({"model_name_or_path": "x", "dataset": ["demo"], **fields})


def test_qlora_reason_gives_the_16_bit_embeddings_the_estimate_counts(llama8b) -> None:
    """Llama-3.1-8B's embeddings and lm_head: 2 x 128256 x 4096 parameters at 2 bytes (bf16) = 1.96 GiB. The
    reason said 'stay in fp32 (3.9 GiB: peft's k-bit preparation upcasts them)' beside a weights part that
    counts them 16-bit, and 'so it fits' on a plan that did not fit."""
    dense_gib = 2 * 128256 * 4096 * 2 / GIB
    for cutoff_len, fits in ((512, True), (1024, False)):
        plan = plan_recipe(recipe(cutoff_len=cutoff_len), vram_gb=8, spec=llama8b)
        assert plan.method == "qlora" and plan.fits is fits
        reason = next(r for r in plan.reasons if r.startswith("method QLoRA"))
        assert f"16-bit ({dense_gib:.1f} GiB)" in reason and "fp32" not in reason
        assert ("so it fits" in reason) is fits and ("does not fit" in reason) is not fits
        nf4_dq = llama8b.block_linear_params * (0.5 + 1 / 64 + 4 / (64 * 256))
        assert plan.estimate.parts["weights"] / GIB == pytest.approx(nf4_dq / GIB + dense_gib, abs=0.01)
