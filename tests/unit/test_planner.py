"""The planner: parameter counts of known models, a monotone estimate, every recommendation path, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.errors import FtwizError
from ftwiz.core.hardware import RawProbe, build_report
from ftwiz.core.hardware.report import GpuInfo, HardwareReport
from ftwiz.core.planner import load_model_spec, plan_recipe
from ftwiz.core.planner.estimator import TrainSetup, estimate_memory, peak_bytes
from ftwiz.core.planner.spec import spec_from_config
from ftwiz.core.recipe import parse_recipe

GIB = 1024**3
MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
SYSTEM = {"cpu_model": "Test CPU", "cpu_cores": 8, "ram_total_bytes": 32 * GIB, "ram_available_bytes": 20 * GIB,
          "disk_free_bytes": {"/runs": 200 * GIB}, "hf_cache": "/hf", "hf_offline": False}

QWEN25_05B = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
              "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}
PHI3_MINI = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064, "tie_word_embeddings": False}
GEMMA2_2B = {"model_type": "gemma2", "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
             "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 256000}
QWEN3_06B = {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
             "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
             "tie_word_embeddings": True}


@pytest.fixture(scope="module")
def llama8b(shared_dir: Path):
    return load_model_spec(shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json")


def recipe(**fields):
    return parse_recipe({"model_name_or_path": "x", "dataset": ["demo"], **fields})


def machine(name: str) -> HardwareReport:
    return build_report(RawProbe.from_json(MACHINES / f"{name}.json"), SYSTEM, [])


def test_llama_3_1_8b_has_8_03_billion_parameters(llama8b) -> None:
    assert llama8b.total_params == pytest.approx(8.03e9, rel=0.005)
    assert llama8b.lm_head_params == llama8b.embedding_params == 128256 * 4096


@pytest.mark.parametrize(("config", "billions", "tied"), [
    (QWEN25_05B, 0.494, True), (PHI3_MINI, 3.82, False), (GEMMA2_2B, 2.61, True), (QWEN3_06B, 0.596, True)])
def test_parameter_counts_of_known_models(config: dict, billions: float, tied: bool) -> None:
    spec = spec_from_config(config)
    assert spec.total_params / 1e9 == pytest.approx(billions, rel=0.01)
    assert spec.tied_embeddings is tied
    assert spec.lm_head_params == (0 if tied else spec.embedding_params)


def test_grouped_query_attention_and_head_dim_shape_the_projections() -> None:
    spec = spec_from_config(QWEN3_06B)
    assert spec.linear_shapes()["q_proj"] == (1024, 16 * 128)  # head_dim 128 != 1024 / 16
    assert spec.linear_shapes()["k_proj"] == (1024, 8 * 128)


def test_estimate_grows_with_length_batch_and_rank(llama8b) -> None:
    base = TrainSetup(method="qlora", seq_len=512, micro_batch=1, lora_rank=8)
    peak = peak_bytes(estimate_memory(llama8b, base))
    for changed in (replace(base, seq_len=1024), replace(base, micro_batch=2), replace(base, lora_rank=64),
                    replace(base, grad_ckpt=False), replace(base, method="lora")):
        assert peak_bytes(estimate_memory(llama8b, changed)) > peak, changed


def test_large_vocabularies_pay_for_their_logits() -> None:
    qwen = estimate_memory(spec_from_config(QWEN25_05B), TrainSetup(method="lora", seq_len=2048, micro_batch=4))
    assert qwen["logits"] > qwen["weights"]  # 150k vocabulary x 8k tokens x 10 bytes dwarfs 1 GB of weights


def test_paged_optimizer_states_are_reported_but_not_in_the_peak(llama8b) -> None:
    parts = estimate_memory(llama8b, TrainSetup(method="full", seq_len=512, optimizer="paged_adamw_8bit"))
    assert parts["optimizer_states"] == 0 and parts["optimizer_states_paged"] == 2 * llama8b.total_params


def test_qlora_keeps_embeddings_16_bit_and_stores_linears_in_4_bit(llama8b) -> None:
    parts = estimate_memory(llama8b, TrainSetup(method="qlora", seq_len=512, kbit_upcast=False))
    dense = (llama8b.embedding_params + llama8b.lm_head_params + llama8b.norm_params) * 2
    assert parts["weights"] == pytest.approx(dense + llama8b.block_linear_params * 0.516, rel=0.01)


def test_peft_kbit_preparation_costs_fp32_embeddings_and_an_fp32_residual_stream(llama8b) -> None:
    """peft's prepare_model_for_kbit_training (TRL's path; not ftwiz's) casts non-4-bit weights to fp32."""
    plain = estimate_memory(llama8b, TrainSetup(method="qlora", seq_len=2048))  # ftwiz's default: no upcast
    peft = estimate_memory(llama8b, TrainSetup(method="qlora", seq_len=2048, kbit_upcast=True))
    dense = llama8b.embedding_params + llama8b.lm_head_params + llama8b.norm_params
    assert peft["weights"] - plain["weights"] == pytest.approx(2 * dense, rel=0.001)
    assert peft["autocast_copies"] == 2 * llama8b.lm_head_params  # the bf16 lm_head saved for backward
    # checkpointed layer inputs: 4 instead of 2 bytes per hidden value
    assert peft["activations"] - plain["activations"] == 2048 * llama8b.num_layers * llama8b.hidden_size * 2


def test_loss_chains_follow_each_stack() -> None:
    from ftwiz.core.planner.estimator import loss_chain_bytes

    assert loss_chain_bytes("transformers", 2) == 12  # backward: log-softmax out + its grad + input grad
    assert loss_chain_bytes("transformers-shift-copy", 2) == 14  # 2 + 4 upcast + 4 shifted copy + 4 log-softmax
    assert loss_chain_bytes("simple", 2) == 10


def test_8b_qlora_fits_an_8gb_card_at_512_tokens_and_suggests_512_for_1024(llama8b) -> None:
    """ftwiz keeps embeddings/lm_head 16-bit (unlike peft's k-bit preparation, whose Hugging Face column in
    Unsloth's table OOMs on 8 GB: tests/unit/test_planner_published.py): NF4 + double quant, paged 8-bit AdamW,
    checkpointing, micro-batch 1 fit 8 GiB at 512 tokens (LLaMA-Factory's table: 4-bit QLoRA of a 7B, ~6 GB)."""
    plan = plan_recipe(recipe(cutoff_len=512), vram_gb=8, spec=llama8b)
    assert plan.fits and plan.method == "qlora" and plan.optimizer == "paged_adamw_8bit"
    assert plan.estimate.peak_bytes <= plan.estimate.budget_bytes
    assert plan.micro_batch * plan.grad_accum >= 16
    assert any("4-bit NF4" in reason for reason in plan.reasons)
    too_long = plan_recipe(recipe(cutoff_len=1024), vram_gb=8, spec=llama8b)
    assert not too_long.fits and "a max length of 512 tokens would fit" in " ".join(too_long.warnings)
    six = plan_recipe(recipe(cutoff_len=256), vram_gb=6, spec=llama8b)
    assert not six.fits and "B parameters or smaller would fit" in " ".join(six.warnings)


def test_big_card_gets_lora_without_checkpointing_and_a_larger_micro_batch(llama8b) -> None:
    plan = plan_recipe(recipe(cutoff_len=512), machine("a100_80gb"), spec=llama8b)
    assert plan.method == "lora" and not plan.gradient_checkpointing and plan.micro_batch >= 4
    assert plan.dtype == "bf16" and plan.device == "cuda"


def test_middle_card_turns_checkpointing_on_before_giving_up_lora() -> None:
    spec = spec_from_config(QWEN25_05B)
    plan = plan_recipe(recipe(cutoff_len=1536), machine("rtx3060_laptop"), spec=spec)
    assert plan.fits and plan.method == "lora"
    assert any("checkpointing" in reason for reason in plan.reasons)


def test_nothing_fits_says_what_would(llama8b) -> None:
    plan = plan_recipe(recipe(cutoff_len=8192), vram_gb=4, spec=llama8b)
    assert not plan.fits
    text = " ".join(plan.warnings)
    assert "does not fit" in text and "B parameters or smaller" in text


def test_too_long_length_suggests_a_shorter_one() -> None:
    spec = spec_from_config(QWEN25_05B)
    plan = plan_recipe(recipe(cutoff_len=32768, finetuning_type="lora", per_device_train_batch_size=1),
                       vram_gb=6, spec=spec)
    assert not plan.fits and "max length of" in " ".join(plan.warnings)


def test_cpu_plans_fp32_and_a_plain_optimizer() -> None:
    plan = plan_recipe(recipe(), machine("no_gpu"), spec=spec_from_config(QWEN25_05B), seq_len=256)
    assert (plan.device, plan.dtype, plan.optimizer, plan.method) == ("cpu", "fp32", "adamw_torch_fused", "lora")


def test_pre_ampere_card_trains_in_fp16() -> None:
    t4 = HardwareReport(gpus=[GpuInfo(vendor="nvidia", index=0, name="Tesla T4", total_bytes=15 * GIB,
                                      free_bytes=15 * GIB, compute_capability=(7, 5), bf16=False)],
                        torch_sees_gpu=True, torch_cuda_version="12.4")
    plan = plan_recipe(recipe(), t4, spec=spec_from_config(QWEN25_05B), seq_len=512)
    assert plan.dtype == "fp16" and "no native bf16" in " ".join(plan.reasons)


def test_what_the_user_fixed_is_respected(llama8b) -> None:
    plan = plan_recipe(recipe(finetuning_type="lora", per_device_train_batch_size=2, gradient_checkpointing=True,
                              lora_rank=32, optim="adamw_8bit"), vram_gb=80, spec=llama8b, seq_len=512)
    assert (plan.method, plan.micro_batch, plan.gradient_checkpointing, plan.lora_rank, plan.optimizer) == (
        "lora", 2, True, 32, "adamw_8bit")
    assert plan.grad_accum == 8  # effective batch 16 kept


def test_dataset_lengths_set_the_max_length(llama8b) -> None:
    plan = plan_recipe(recipe(cutoff_len=2048), vram_gb=24, spec=llama8b, dataset_lengths=[100, 200, 300])
    assert plan.max_seq_len == 320
    assert plan.est_seconds_per_epoch and plan.est_seconds_per_epoch > 0


def test_unknown_model_type_is_estimated_with_a_warning() -> None:
    spec = spec_from_config({"model_type": "brandnew", "hidden_size": 512, "num_hidden_layers": 4,
                             "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 1000})
    assert spec.total_params > 0 and "unknown model type 'brandnew'" in spec.warnings[0]


def test_missing_or_broken_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FtwizError, match="no config.json"):
        load_model_spec(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "llama",\n "hidden_size": }')
    with pytest.raises(FtwizError) as info:
        load_model_spec(tmp_path)
    assert "line 2" in str(info.value.where)
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(FtwizError, match="required field"):
        load_model_spec(tmp_path)


def test_impossible_vram_is_refused(llama8b) -> None:
    with pytest.raises(FtwizError, match="not a plausible"):
        plan_recipe(recipe(), vram_gb=-3, spec=llama8b)


def test_cli_plans_a_config_file_for_a_12gb_card(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json"
    code = cli_main(["plan", str(config), "--vram-gb", "12", "--seq-len", "512", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "qlora" and out["fits"]
    assert out["model"]["parameters"] == pytest.approx(8.03e9, rel=0.005)
    assert set(out["estimate"]["parts"]) >= {"weights", "activations", "logits", "cuda_context"}


def test_cli_exits_1_when_nothing_fits(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = shared_dir / "reference" / "model_configs" / "llama-2-13b.json"
    assert cli_main(["plan", str(config), "--vram-gb", "2", "--seq-len", "4096"]) == 1
    assert "does NOT fit" in " ".join(capsys.readouterr().out.split())


def test_cli_rejects_nonsense_flags(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = shared_dir / "reference" / "model_configs" / "llama-2-7b.json"
    assert cli_main(["plan", str(config), "--batch", "0", "--vram-gb", "8"]) == 2
    assert "--batch-size 0" in capsys.readouterr().err
    assert cli_main(["plan", str(config), "--seq-len", "4", "--vram-gb", "8"]) == 2


def test_cli_plans_the_demo_recipe_with_its_real_data(demo_base_model: Path, capsys) -> None:
    recipes = Path(__file__).resolve().parents[2] / "recipes"
    code = cli_main(["plan", str(recipes / "demo.yaml"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "lora" and out["device"] == "cpu"
    assert out["max_seq_len"] < 256  # measured from the demo's short answers, below its cutoff_len


def test_cli_plans_a_hub_id_found_in_the_local_cache(shared_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    snapshot = tmp_path / "hub" / "models--meta-llama--Llama-3.1-8B" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text((shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json").read_text())
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert cli_main(["plan", "meta-llama/Llama-3.1-8B", "--vram-gb", "24", "--seq-len", "1024", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["parameters"] == pytest.approx(8.03e9, rel=0.005)
    assert cli_main(["plan", "nobody/not-cached", "--vram-gb", "24"]) == 2
    assert "not in the local Hugging Face cache" in capsys.readouterr().err


@pytest.mark.parametrize(("repo", "billions"), [("Qwen/Qwen3-0.6B", 0.596), ("Qwen/Qwen2.5-1.5B-Instruct", 1.54),
                                                ("Qwen/Qwen2.5-7B-Instruct", 7.62),
                                                ("meta-llama/Llama-3.1-8B-Instruct", 8.03)])
def test_curated_models_have_their_published_sizes(repo: str, billions: float) -> None:
    from ftwiz.core.planner.catalog import CURATED

    assert spec_from_config(CURATED[repo]).total_params / 1e9 == pytest.approx(billions, rel=0.01)


def test_gemma3_image_text_config_saved_as_a_diff_is_planned_with_its_real_vocabulary() -> None:
    """google/gemma-3-4b-it's config.json keeps only the text keys that differ from the defaults. Reading it
    raw planned a 32k vocabulary: logits memory 8x too small, a "fits" that would run out of memory."""
    sparse = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
              "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                              "num_attention_heads": 8, "num_hidden_layers": 34, "num_key_value_heads": 4,
                              "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}
    spec = spec_from_config(sparse)
    assert (spec.vocab_size, spec.head_dim, spec.tied_embeddings) == (262208, 256, True)
    assert spec.total_params / 1e9 == pytest.approx(3.88, abs=0.01)  # the published text-model size


def test_config_without_vocab_size_is_refused_not_guessed() -> None:
    with pytest.raises(FtwizError, match="vocab_size"):
        spec_from_config({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                          "intermediate_size": 128})


def test_cli_answers_will_exactly_this_fit(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every knob fixed from the command line is planned as given, and the estimate is printed either way."""
    config = shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json"
    args = ["plan", str(config), "--vram-gb", "24", "--seq-len", "1024", "--method", "lora", "--batch-size", "2",
            "--no-grad-ckpt", "--lora-rank", "8", "--lora-targets", "q_proj,v_proj", "--json"]
    code = cli_main(args)
    out = json.loads(capsys.readouterr().out)
    assert (out["method"], out["micro_batch"], out["gradient_checkpointing"], out["lora_rank"]) == ("lora", 2, False, 8)
    assert out["lora_targets"] == ["q_proj", "v_proj"]
    assert code == (0 if out["fits"] else 1) and out["estimate"]["peak_bytes"] > 16 * GIB  # bf16 weights alone
    with_ckpt = args[:args.index("--no-grad-ckpt")] + ["--grad-ckpt"] + args[args.index("--no-grad-ckpt") + 1:]
    cli_main(with_ckpt)
    checkpointed = json.loads(capsys.readouterr().out)
    assert checkpointed["gradient_checkpointing"] and checkpointed["estimate"]["peak_bytes"] < out["estimate"]["peak_bytes"]


def test_cli_refuses_lora_targets_the_model_does_not_have(shared_dir: Path, capsys) -> None:
    config = shared_dir / "reference" / "model_configs" / "llama-3.1-8b.json"
    assert cli_main(["plan", str(config), "--vram-gb", "24", "--lora-targets", "q_proj,c_attn"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "c_attn" in err and "gate_proj" in err  # names the unknown one and lists what exists


def test_demo_is_the_built_in_model_even_beside_a_folder_named_demo(tiny_qwen2: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`ftwiz train` in a folder holding demo/ (from `ftwiz demo` runs, say) failed: 'demo has no config.json'."""
    import ftwiz.core.tiny

    # the tiny Qwen2 stands in for the built-in demo model (building that takes a minute)
    monkeypatch.setattr(ftwiz.core.tiny, "ensure_demo_base_model", lambda: tiny_qwen2)
    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_model_spec("demo") == load_model_spec(tiny_qwen2)
