"""Training stages without training: recipe knobs reach TRL's configs, every pair shape becomes the same TRL
rows, and the planner charges each stage for what it holds in memory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from ftwiz.core.data import prepare_for_training
from ftwiz.core.data.preference import preference_rows
from ftwiz.core.errors import FtwizError
from ftwiz.core.planner import plan_recipe
from ftwiz.core.planner.estimator import TrainSetup, estimate_memory, peak_bytes
from ftwiz.core.planner.spec import spec_from_config
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.train.stages import stage_config

QWEN25_05B = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
              "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}


def recipe(**fields):
    return parse_recipe({"model_name_or_path": "x", "dataset": ["d.jsonl"], **fields})


def test_llama_factory_knobs_reach_trl_configs(tmp_path: Path) -> None:
    base = {"output_dir": str(tmp_path), "use_cpu": True, "report_to": []}
    dpo = stage_config(recipe(stage="dpo", pref_beta=0.25, pref_loss="ipo", pref_ftx=0.5), base, 512)
    assert (type(dpo).__name__, dpo.beta, dpo.loss_type, dpo.loss_weights, dpo.max_length) == (
        "DPOConfig", 0.25, ["ipo", "sft"], [1.0, 0.5], 512)
    plain = stage_config(recipe(stage="dpo"), base, 256)
    assert (plain.loss_type, plain.loss_weights, plain.beta) == (["sigmoid"], None, 0.1)
    kto = stage_config(recipe(stage="kto", kto_chosen_weight=1.5, kto_rejected_weight=0.5), base, 256)
    assert (type(kto).__name__, kto.desirable_weight, kto.undesirable_weight) == ("KTOConfig", 1.5, 0.5)
    orpo = stage_config(recipe(stage="orpo", pref_beta=0.2), base, 256)
    assert (type(orpo).__name__, orpo.beta) == ("ORPOConfig", 0.2)


def test_unknown_stage_or_loss_is_a_recipe_error() -> None:
    with pytest.raises(FtwizError, match="stage"):
        recipe(stage="rlhf")
    with pytest.raises(FtwizError, match="pref_loss"):
        recipe(stage="dpo", pref_loss="simpo-typo")


SHAPES = {
    "prompt.jsonl": {"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "A rock."},
    "alpaca.jsonl": {"instruction": "Name a fruit.", "chosen": "Apple.", "rejected": "A rock."},
    "sharegpt.jsonl": {"conversations": [{"from": "human", "value": "Name a fruit."}],
                       "chosen": {"from": "gpt", "value": "Apple."}, "rejected": {"from": "gpt", "value": "A rock."}},
    "openai.jsonl": {"messages": [{"role": "user", "content": "Name a fruit."}],
                     "chosen": {"role": "assistant", "content": "Apple."},
                     "rejected": {"role": "assistant", "content": "A rock."}},
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_pair_shape_becomes_the_same_trl_rows(tiny_qwen2: Path, tmp_path: Path, name: str) -> None:
    from transformers import AutoTokenizer

    path = tmp_path / name
    path.write_text(json.dumps(SHAPES[name]) + "\n")
    prepared = prepare_for_training(recipe(dataset=[str(path)], val_size=0.0, test_size=0.0, dedup=False,
                                           model_name_or_path=str(tiny_qwen2)),
                                    AutoTokenizer.from_pretrained(tiny_qwen2))
    user = [{"role": "user", "content": "Name a fruit."}]
    assert preference_rows(prepared.splits["train"], "dpo") == [{
        "prompt": user, "chosen": [{"role": "assistant", "content": "Apple."}],
        "rejected": [{"role": "assistant", "content": "A rock."}]}]
    assert [(r["completion"][0]["content"], r["label"]) for r in preference_rows(prepared.splits["train"], "kto")] \
        == [("Apple.", True), ("A rock.", False)]


def test_pairwise_stages_pay_for_two_sequences_and_full_dpo_for_a_reference_copy() -> None:
    spec = spec_from_config(QWEN25_05B)
    sft = TrainSetup(method="lora", seq_len=512, micro_batch=2, device="cuda")
    parts = {stage: estimate_memory(spec, replace(sft, stage=stage)) for stage in ("sft", "dpo", "orpo", "kto")}
    assert parts["dpo"]["logits"] == 2 * parts["sft"]["logits"]  # chosen + rejected per example
    assert parts["orpo"]["activations"] == 2 * parts["sft"]["activations"]
    assert parts["kto"]["logits"] == parts["sft"]["logits"]
    assert "reference_weights" not in parts["dpo"]  # LoRA: the reference is the adapter-disabled base
    full = estimate_memory(spec, replace(sft, method="full", stage="dpo"))
    assert full["reference_weights"] == full["weights"]
    assert "reference_weights" not in estimate_memory(spec, replace(sft, method="full", stage="orpo"))
    assert peak_bytes(parts["dpo"]) > peak_bytes(parts["sft"])


def test_plan_for_dpo_says_why_it_needs_more_memory() -> None:
    from ftwiz.core.hardware import RawProbe, build_report

    machines = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
    system = {"cpu_model": "Test CPU", "cpu_cores": 8, "ram_total_bytes": 32 * 2**30,
              "ram_available_bytes": 20 * 2**30, "disk_free_bytes": {"/runs": 200 * 2**30}, "hf_cache": "/hf",
              "hf_offline": False}
    hardware = build_report(RawProbe.from_json(machines / "no_gpu.json"), system, [])
    spec = spec_from_config(QWEN25_05B)
    sft = plan_recipe(recipe(), hardware, spec=spec, seq_len=512)
    dpo = plan_recipe(recipe(stage="dpo"), hardware, spec=spec, seq_len=512)
    assert any("two sequences" in r and "adapter switched off" in r for r in dpo.reasons)
    assert not any(r.startswith("stage ") for r in sft.reasons)
    assert dpo.estimate.peak_bytes > sft.estimate.peak_bytes or dpo.micro_batch < sft.micro_batch


def test_kto_reads_labelled_answers_in_trl_and_llama_factory_shapes(tiny_qwen2: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    rows = [{"messages": [{"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": "Apple."}],
             "label": True},
            {"conversations": [{"from": "human", "value": "Name a fruit."}, {"from": "gpt", "value": "A rock."}],
             "kto_tag": "false"}]
    for row, name in zip(rows, ("openai.jsonl", "sharegpt.jsonl"), strict=True):
        (tmp_path / name).write_text(json.dumps(row) + "\n")
    got = []
    for name in ("openai.jsonl", "sharegpt.jsonl"):
        prepared = prepare_for_training(recipe(dataset=[str(tmp_path / name)], val_size=0.0, test_size=0.0,
                                               dedup=False, model_name_or_path=str(tiny_qwen2)),
                                        AutoTokenizer.from_pretrained(tiny_qwen2))
        got += preference_rows(prepared.splits["train"], "kto")
    user = [{"role": "user", "content": "Name a fruit."}]
    assert got == [{"prompt": user, "completion": [{"role": "assistant", "content": "Apple."}], "label": True},
                   {"prompt": user, "completion": [{"role": "assistant", "content": "A rock."}], "label": False}]
    with pytest.raises(FtwizError, match="no chosen/rejected"):  # a labelled answer is not a pair
        preference_rows(prepared.splits["train"], "dpo")


def test_a_label_that_is_not_a_kto_mark_is_left_to_the_user() -> None:
    from ftwiz.core.data.formats import normalise
    from ftwiz.core.data.records import RawRecord, RecordProblem

    plain = normalise(RawRecord({"instruction": "Rate it.", "output": "Good.", "label": "positive"}, "f"), "alpaca")
    assert plain.label is None and "label" not in plain.to_json()
    with pytest.raises(RecordProblem, match="kto_tag"):
        normalise(RawRecord({"instruction": "Rate it.", "output": "Good.", "kto_tag": "maybe"}, "f"), "alpaca")
