"""The estimator against published peak measurements (bench/data/memory_calibration_published.csv, each row
with its URL): the oracle is the measured figure, never an earlier estimate."""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
from ftwiz.core.planner.estimator import TrainSetup, estimate_memory, peak_bytes
from ftwiz.core.planner.spec import load_model_spec

GIB = 1024**3
BENCH = Path(__file__).resolve().parents[2] / "bench"
DATA = BENCH / "data"
ROWS = list(csv.DictReader((DATA / "memory_calibration_published.csv").open(encoding="utf-8")))


def _bench():
    """bench/planner_accuracy.py, whose setup_for turns a row's columns into a TrainSetup."""
    spec = importlib.util.spec_from_file_location("planner_accuracy", BENCH / "planner_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP_FOR = _bench().setup_for


def _spec(row: dict):
    return load_model_spec(DATA / "model_configs" / f"{row['model_config']}.json")


def _error(row: dict, setup: TrainSetup) -> float:
    estimate = peak_bytes(estimate_memory(_spec(row), setup)) / GIB
    measured = float(row["measured_peak_gib"])
    return (estimate - measured) / measured


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_every_published_peak_is_predicted_within_minus_10_and_plus_20_percent(row: dict) -> None:
    """What nvidia-smi showed (Qwen's table) or the card a length just fits (Unsloth's): never 10% short."""
    assert -0.10 <= _error(row, SETUP_FOR(row)) <= 0.20


def test_both_published_classes_are_covered() -> None:
    short_lora = [r for r in ROWS if r["method"] == "lora" and int(r["seq_len"]) <= 1024]
    long_qlora = [r for r in ROWS if r["method"] == "qlora" and int(r["seq_len"]) >= 932]
    assert {r["model_config"] for r in short_lora} == {"qwen-1_8b", "qwen-7b", "qwen-14b"}
    assert len(long_qlora) >= 6 and all(r["url"].startswith("https://github.com/") for r in ROWS)


def test_deepspeed_zero2_is_what_closes_the_gap_on_qwens_rows() -> None:
    """Qwen's scripts train through DeepSpeed ZeRO-2: without modelling it the 1.8B rows are ~19% short."""
    q1 = next(r for r in ROWS if r["id"] == "Q1")
    assert q1["engine"] == "deepspeed-zero2"
    assert _error(q1, replace(SETUP_FOR(q1), engine="trainer")) < -0.10
    assert abs(_error(q1, SETUP_FOR(q1))) < 0.05


def test_zero2_costs_22_bytes_per_trainable_parameter_and_two_reduction_buckets() -> None:
    spec = _spec(next(r for r in ROWS if r["id"] == "Q1"))
    setup = TrainSetup(method="lora", seq_len=256, lora_rank=64, grad_ckpt=True)
    trainer = estimate_memory(spec, setup)
    zero2 = estimate_memory(spec, replace(setup, engine="deepspeed-zero2"))
    trainable = trainer["trainable_weights"] // 4  # peft's fp32 adapters

    def per_param(parts: dict[str, int]) -> float:
        return (parts["trainable_weights"] + parts["gradients"] + parts["optimizer_states"]) / trainable

    assert per_param(trainer) == pytest.approx(16) and per_param(zero2) == pytest.approx(22)
    assert zero2["zero_buckets"] == 2 * 200_000_000 * 2 and "zero_buckets" not in trainer  # bf16, overlap_comm


def test_the_peft_upcast_stack_of_unsloths_hf_column_does_not_fit_8gb_even_at_256_tokens() -> None:
    """Unsloth's table: Hugging Face + FA2 runs out of memory on an 8 GB card; ftwiz's QLoRA (no fp32 upcast) fits."""
    u1 = next(r for r in ROWS if r["id"] == "U1")
    setup = replace(SETUP_FOR(u1), seq_len=256)
    assert setup.kbit_upcast and peak_bytes(estimate_memory(_spec(u1), setup)) > 8 * GIB
    assert peak_bytes(estimate_memory(_spec(u1), replace(setup, kbit_upcast=False))) < 8 * GIB
