"""`ftwiz plan --probe` compares each measurement with the estimate of the same job: packed rows and
preference pairs included. The estimate printed beside a measurement left out the recipe's packing and stage,
so a packed run's probe showed an estimate without the packed row's masks and a DPO probe one sequence per
example: a measurement looked far above the estimate, and a fitting micro-batch was searched from the wrong
figure. Oracle: the bytes of the packed row's masks and of the chosen + rejected logits, from first principles.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.hardware import RawProbe, build_report
from ftwiz.core.planner import plan_recipe
from ftwiz.core.planner.probe import probe_plan
from ftwiz.core.planner.spec import spec_from_config
from ftwiz.core.recipe import parse_recipe

GIB = 1024**3
MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
SYSTEM = {"cpu_model": "Test CPU", "cpu_cores": 8, "ram_total_bytes": 32 * GIB, "ram_available_bytes": 20 * GIB}
QWEN25_05B = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
              "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}
LENGTH, MICRO = 512, 4


@pytest.fixture(autouse=True)
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))


def fitting_machine(request: dict) -> dict:
    """Every attempt measured at 4 GiB: it fits the 24 GB card."""
    return {"peak_bytes": 4 * GIB, "parts": {}, "tokens_per_s": 1000.0, "steps": request["steps"], "oom": False,
            "error": None}


def probed(**fields):
    """(the plan, the probe report) for a LoRA job fixed at micro-batch 4, checkpointing off (every layer's
    saved tensors stay until backward)."""
    machine = build_report(RawProbe.from_json(MACHINES / "rtx4090.json"), SYSTEM, [])
    recipe = parse_recipe({"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset": ["demo"], "finetuning_type": "lora",
                           "per_device_train_batch_size": MICRO, "gradient_checkpointing": False, **fields})
    spec = spec_from_config(QWEN25_05B)
    plan = plan_recipe(recipe, machine, spec=spec, seq_len=LENGTH)
    report = probe_plan(plan, recipe=recipe, spec=spec, model_dir=Path("/models/qwen"), model_key="qwen",
                        hardware=machine, synthetic=True, measure=fitting_machine)
    return plan, report


def test_a_packed_probe_is_compared_with_the_packed_estimate() -> None:
    plan, report = probed(packing=True)
    unpacked, _ = probed()
    attempt = report.attempts[0]
    assert (attempt.micro_batch, attempt.seq_len) == (MICRO, LENGTH)
    # packing flattens the micro-batch into one row of 4 x 512 keys: every layer's 16-bit SDPA mask copy and the
    # bool mask hold tokens x row, not tokens x 512
    tokens, extra_keys = MICRO * LENGTH, (MICRO - 1) * LENGTH
    packed_masks = tokens * extra_keys * (2 * 24 + 1)
    assert attempt.estimate_bytes - unpacked.estimate.peak_bytes >= packed_masks
    assert attempt.estimate_bytes == plan.estimate.peak_bytes  # the plan's printed estimate for this setting
    assert report.plan.estimate.peak_bytes == plan.estimate.peak_bytes


def test_a_dpo_probe_is_compared_with_the_two_sequence_estimate() -> None:
    plan, report = probed(stage="dpo")
    attempt = report.attempts[0]
    # chosen and rejected in one forward: 2 x 4 x 512 tokens of 151936 logits through the 12-byte loss chain
    assert attempt.estimate_bytes >= 2 * MICRO * LENGTH * 151936 * 12
    assert attempt.estimate_bytes == plan.estimate.peak_bytes
