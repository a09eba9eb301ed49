"""The probe's search, its CUDA arithmetic through the hardware seam, and how stored measurements steer plans.

The child process itself runs in tests/e2e/test_plan_probe.py; here each attempt is answered by a
memory model of a machine (a function of micro-batch, checkpointing and length), so every branch of the
search runs in milliseconds and the answers are known in advance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.hardware import RawProbe, build_report
from ftwiz.core.hardware.probe import GpuMemoryReading
from ftwiz.core.planner import plan_recipe
from ftwiz.core.planner.measured import apply_measurements, device_peak, load_measurements
from ftwiz.core.planner.probe import probe_plan
from ftwiz.core.planner.spec import spec_from_config
from ftwiz.core.recipe import parse_recipe

GIB = 1024**3
MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
SYSTEM = {"cpu_model": "Test CPU", "cpu_cores": 8, "ram_total_bytes": 32 * GIB, "ram_available_bytes": 20 * GIB}
QWEN25_05B = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
              "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}


@pytest.fixture(autouse=True)
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own measurements file: a stored measurement changes later plans, by design."""
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))


def rtx4090(driver: str | None = None):
    raw = RawProbe.from_json(MACHINES / "rtx4090.json")
    if driver:
        raw = raw.model_copy(update={"driver_version": driver})
    return build_report(raw, SYSTEM, [])


def machine_model(per_sample_gib: float, *, base_gib: float = 3.0, ckpt_saves: float = 0.5, oom_above: int = 99):
    """A fake device: peak = base + batch x length/512 x per-sample (less with checkpointing); OOM above a batch."""
    calls: list[dict] = []

    def measure(request: dict) -> dict:
        calls.append(request)
        micro, length = request["micro_batch"], request["seq_len"]
        if micro > oom_above:
            return {"oom": True, "error": "CUDA out of memory", "peak_bytes": 0, "parts": {}}
        per = per_sample_gib * (ckpt_saves if request["grad_ckpt"] else 1.0) * length / 512
        return {"peak_bytes": int((base_gib + micro * per) * GIB), "parts": {"torch_max_allocated": 1},
                "tokens_per_s": 1000.0 * micro, "steps": request["steps"], "oom": False, "error": None}

    measure.calls = calls  # type: ignore[attr-defined]
    return measure


def _plan(**fields):
    recipe = parse_recipe({"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset": ["demo"], **fields})
    spec = spec_from_config(QWEN25_05B)
    return recipe, spec, plan_recipe(recipe, rtx4090(), spec=spec, seq_len=512)


def _probe(recipe, spec, plan, measure, **kwargs):
    return probe_plan(plan, recipe=recipe, spec=spec, model_dir=Path("/models/qwen"), model_key="Qwen/Qwen2.5-0.5B",
                      hardware=rtx4090(), synthetic=True, measure=measure, **kwargs)


def test_over_budget_lowers_the_micro_batch_first_and_keeps_the_effective_batch() -> None:
    recipe, spec, plan = _plan(per_device_train_batch_size=8, gradient_checkpointing=False)
    # 8 samples x 3 GiB = 27 GiB on a 22 GiB budget; 4 x 3 = 15 GiB fits.
    report = _probe(recipe, spec, plan, machine_model(3.0), budget_bytes=22 * GIB)
    # The user fixed micro-batch and checkpointing: those are kept, only the length is lowered.
    assert [(a.micro_batch, a.seq_len) for a in report.attempts] == [(8, 512), (8, 256)]
    assert report.plan.fits and report.plan.max_seq_len == 256
    report = _probe(recipe, spec, plan, machine_model(3.0), budget_bytes=22 * GIB, fixed_length=True)
    assert [a.micro_batch for a in report.attempts] == [8]  # "will exactly this fit?": measured, not searched
    assert not report.plan.fits and "nothing fits" in report.notes[-1]
    recipe, spec, plan = _plan(gradient_checkpointing=False)
    plan = plan.model_copy(update={"micro_batch": 8})
    report = _probe(recipe, spec, plan, machine_model(3.0), budget_bytes=22 * GIB)
    assert [(a.micro_batch, a.fits) for a in report.attempts] == [(8, False), (4, True)]
    assert report.plan.micro_batch == 4 and report.plan.micro_batch * report.plan.grad_accum == 16
    assert report.plan.fits and report.plan.measured.peak_bytes == 15 * GIB


def test_then_checkpointing_then_length_until_it_fits() -> None:
    recipe, spec, plan = _plan()
    plan = plan.model_copy(update={"micro_batch": 2, "gradient_checkpointing": False})
    # base 3 GiB + 16 GiB per sample at 512 tokens: mb 1 without checkpointing is 19 GiB, with it 11 GiB;
    # the budget of 8 GiB needs 256 tokens (3 + 4 = 7 GiB).
    report = _probe(recipe, spec, plan, machine_model(16.0), budget_bytes=8 * GIB)
    steps = [(a.micro_batch, a.grad_ckpt, a.seq_len, a.fits) for a in report.attempts]
    assert steps[:4] == [(2, False, 512, False), (1, False, 512, False), (1, True, 512, False), (1, True, 256, True)]
    assert steps[4:] == [(2, True, 256, False)]  # the estimate said a second sample might fit: tried, and not kept
    assert (report.plan.max_seq_len, report.plan.gradient_checkpointing, report.plan.micro_batch) == (256, True, 1)
    assert "max length lowered to 256" in " ".join(report.notes)


def test_room_left_raises_the_micro_batch_but_not_past_a_failure() -> None:
    recipe, spec, plan = _plan(effective_batch_size=32)
    plan = plan.model_copy(update={"micro_batch": 1, "gradient_checkpointing": True})
    report = _probe(recipe, spec, plan, machine_model(0.5, oom_above=4), budget_bytes=22 * GIB)
    assert [(a.micro_batch, a.oom) for a in report.attempts] == [(1, False), (2, False), (4, False), (8, True)]
    assert report.plan.micro_batch == 4 and report.plan.grad_accum == 8
    assert report.plan.measured.tokens_per_s == 4000.0
    # the estimate shown beside the measurement is for the measured setting, not the one planned before
    assert report.plan.estimate.peak_bytes == report.plan.measured.estimate_bytes > report.attempts[0].estimate_bytes


def test_out_of_memory_at_the_start_searches_down_and_never_retries_the_failed_batch() -> None:
    recipe, spec, plan = _plan(gradient_checkpointing=True)
    plan = plan.model_copy(update={"micro_batch": 8})
    measure = machine_model(0.5, oom_above=2)
    report = _probe(recipe, spec, plan, measure, budget_bytes=22 * GIB)
    assert [(a.micro_batch, a.oom) for a in report.attempts] == [(8, True), (4, True), (2, False)]
    assert report.plan.micro_batch == 2


def test_measured_time_per_epoch_comes_from_measured_tokens_per_second() -> None:
    recipe, spec, plan = _plan(per_device_train_batch_size=2)
    report = _probe(recipe, spec, plan, machine_model(0.5), budget_bytes=22 * GIB, epoch_tokens=600_000)
    assert report.plan.est_seconds_per_epoch == pytest.approx(600_000 / 2000.0)
    assert any(reason.startswith("measured:") for reason in report.plan.reasons)


def test_a_stored_measurement_steers_the_next_plan_on_the_same_machine_only() -> None:
    recipe, spec, plan = _plan(effective_batch_size=32)
    plan = plan.model_copy(update={"micro_batch": 1, "gradient_checkpointing": True})
    _probe(recipe, spec, plan, machine_model(0.5, oom_above=4), budget_bytes=int(plan.estimate.budget_bytes))
    assert len(load_measurements()) == 4  # every attempt kept, keyed by model, setup, device and driver
    again = plan_recipe(recipe, rtx4090(), spec=spec, seq_len=512)
    assert again.measured is not None and again.micro_batch == 4 and again.gradient_checkpointing
    assert again.grad_accum == 8 and any("measured on this machine" in r for r in again.reasons)
    other_driver = plan_recipe(recipe, rtx4090(driver="570.86.10"), spec=spec, seq_len=512)
    assert other_driver.measured is None  # another driver: another CUDA context, so re-measure
    other_card = plan_recipe(recipe, vram_gb=24, spec=spec, seq_len=512)
    assert other_card.measured is None


def test_a_stored_measurement_over_the_budget_warns_on_the_next_plan() -> None:
    recipe, spec, plan = _plan(per_device_train_batch_size=4, gradient_checkpointing=True)
    _probe(recipe, spec, plan, machine_model(12.0), budget_bytes=int(plan.estimate.budget_bytes))
    again = plan_recipe(recipe, rtx4090(), spec=spec, seq_len=512)
    assert again.measured is not None and "more than the" in " ".join(again.warnings)


def test_cuda_peak_is_what_nvml_shows_for_the_process_at_the_allocators_peak() -> None:
    reading = GpuMemoryReading.from_json(MACHINES / "readings" / "rtx4090_after_probe.json")
    peak, parts = device_peak(reading)
    context = reading.nvml_process_used_bytes - reading.torch_reserved_bytes
    assert peak == reading.torch_max_reserved_bytes + context == reading.nvml_process_used_bytes
    assert parts["cuda_context_and_libraries"] == context > 0
    assert parts["allocator_reserve"] == reading.torch_max_reserved_bytes - reading.torch_max_allocated_bytes
    assert parts["nvml_device_used"] == reading.nvml_device_used_bytes


def test_without_nvml_process_figures_the_context_is_an_estimate_and_says_so() -> None:
    reading = GpuMemoryReading.from_json(MACHINES / "readings" / "rtx4090_no_process_info.json")
    peak, parts = device_peak(reading)
    assert "cuda_context_estimated" in parts and "cuda_context_and_libraries" not in parts
    assert peak == reading.torch_max_reserved_bytes + parts["cuda_context_estimated"]


def test_measurements_are_not_applied_without_a_known_machine() -> None:
    recipe, spec, plan = _plan()
    assert apply_measurements(plan, model="x", hardware=None, fixed_batch=False, fixed_ckpt=False,
                              effective_batch=16, epoch_tokens=None, measurements=[]) is plan
