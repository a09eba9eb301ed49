"""`ftwiz plan` on GPT-2-style configs (GPT-2, OPT, MPT, BLOOM, GPT-J, CodeGen) and on configs that leave out
tie_word_embeddings. Oracles: transformers' own model built from the same config on the meta device, and
published parameter counts. Each config is what ``save_pretrained`` writes: the file's own key names
(n_embd, d_model, n_embed...) and no key whose value is the class default.
"""

from __future__ import annotations

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.planner import plan_recipe
from ftwiz.core.recipe import parse_recipe

torch = pytest.importorskip("torch")

# small shapes in each family's own key names; OPT with a narrower embedding and post-LayerNorm (as opt-350m)
FAMILY = {
    "gpt2": {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128},
    "opt": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 192,
            "word_embed_proj_dim": 32, "max_position_embeddings": 128, "do_layer_norm_before": False},
    "mpt": {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 128},
    "bloom": {"n_embed": 64, "n_layer": 2, "n_head": 4},
    "gptj": {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128, "rotary_dim": 8},
    "codegen": {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128, "n_ctx": 128, "rotary_dim": 8},
}
IDS = {"vocab_size": 100, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}


def saved_config(model_type: str, fields: dict) -> tuple[dict, object]:
    """(config.json as save_pretrained writes it, transformers' model built from it on the meta device)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    hf_config = AutoConfig.for_model(model_type, **fields, **IDS)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    return {**hf_config.to_diff_dict(), "model_type": model_type}, model


def adapted_modules(model) -> dict[str, tuple[int, int]]:
    """(in, out) of every module peft's all-linear adapts in block 0 (nn.Linear and GPT-2's Conv1D), by path."""
    from transformers.pytorch_utils import Conv1D

    shapes = {}
    for name, module in model.named_modules():
        if ".0." not in name:
            continue
        if isinstance(module, torch.nn.Linear):
            shapes[name] = (module.in_features, module.out_features)
        elif isinstance(module, Conv1D):
            shapes[name] = (module.weight.shape[0], module.nf)
    return shapes


@pytest.mark.parametrize("model_type", sorted(FAMILY))
def test_gpt2_family_is_read_and_counted_as_transformers_builds_it(model_type: str) -> None:
    """ftwiz refused every one of these with 'config lacks a required field: hidden_size' (or, for OPT,
    missed its position table, biases and narrower embeddings). The count is what is loaded into memory, and
    the module names and shapes are what LoRA adapts (rank x (in + out) each)."""
    from ftwiz.core.planner.spec import spec_from_config

    config, model = saved_config(model_type, FAMILY[model_type])
    spec = spec_from_config(config)
    assert spec.total_params == sum(p.numel() for p in model.parameters())
    assert spec.hidden_size == 64 and spec.num_layers == 2 and spec.num_heads == 4
    modules = adapted_modules(model)
    names = spec.module_names()
    # every module LoRA adapts is named by exactly one of the spec's names (peft matches by suffix), same shape
    for path, shape in modules.items():
        (match,) = [name for name in names if path.endswith("." + name)]
        assert spec.module_shapes()[match] == shape, path
    assert len(names) == len(modules)
    # oracle for what LoRA trains: peft's all-linear on the same model (GPT-2's Conv1D and OPT's
    # project_in/project_out included)
    peft = pytest.importorskip("peft")
    from ftwiz.core.planner.estimator import lora_params

    adapted = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules="all-linear"))
    assert lora_params(spec, 8, ("all",)) == sum(p.numel() for p in adapted.parameters() if p.requires_grad)


def test_published_gpt2_and_bloom_counts() -> None:
    """openai-community/gpt2 has 124,439,808 parameters and bigscience/bloom-560m 559,214,592 (their model
    pages); both config.json files (abridged to the shape keys) leave out tie_word_embeddings."""
    from ftwiz.core.planner.spec import spec_from_config

    gpt2 = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
            "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}
    bloom = {"architectures": ["BloomForCausalLM"], "model_type": "bloom", "n_embed": 1024, "n_layer": 24,
             "num_attention_heads": 16, "vocab_size": 250880}
    assert spec_from_config(gpt2).total_params == 124_439_808
    assert spec_from_config(bloom).total_params == 559_214_592


def test_a_config_without_any_size_name_is_still_refused() -> None:
    """Aliases are mapped, sizes are never guessed from a class default (GPT2Config's n_embd=768)."""
    from ftwiz.core.planner.spec import spec_from_config

    with pytest.raises(FtwizError, match="hidden_size"):
        spec_from_config({"model_type": "gpt2", "n_layer": 2, "n_head": 4, "vocab_size": 100})


@pytest.mark.parametrize(("model_type", "architecture"), [("gpt2", "GPT2LMHeadModel"), ("opt", "OPTForCausalLM"),
                                                          ("bloom", "BloomForCausalLM"), ("gptj", "GPTJForCausalLM")])
def test_plan_says_when_export_cannot_write_the_architecture(tmp_path, model_type: str, architecture: str) -> None:
    """The plan of a model ftwiz can train but not export to GGUF says so before a long run; oracle: the
    exporter's own check refuses the same config.json."""
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.planner.spec import spec_from_config

    config, _ = saved_config(model_type, FAMILY[model_type])
    config["architectures"] = [architecture]
    with pytest.raises(FtwizError, match="cannot be exported to GGUF"):
        model_params(tmp_path, config)
    plan = plan_recipe(parse_recipe({"model_name_or_path": "x", "dataset": ["demo"], "cutoff_len": 128}),
                       vram_gb=8, spec=spec_from_config(config))
    assert plan.fits
    assert any("cannot write " + architecture in w and "GGUF" in w for w in plan.warnings)


def test_plan_of_an_exportable_architecture_has_no_export_warning(tmp_path) -> None:
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.planner.spec import spec_from_config

    config, _ = saved_config("llama", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                       "intermediate_size": 128})
    config["architectures"] = ["LlamaForCausalLM"]
    model_params(tmp_path, config)  # the exporter accepts it
    plan = plan_recipe(parse_recipe({"model_name_or_path": "x", "dataset": ["demo"], "cutoff_len": 128}),
                       vram_gb=8, spec=spec_from_config(config))
    assert not any("GGUF" in w for w in plan.warnings)


@pytest.mark.parametrize(("model_type", "fields"), [
    ("starcoder2", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                    "intermediate_size": 128}),
    ("llama", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}),
    ("gpt2", FAMILY["gpt2"]), ("gptj", FAMILY["gptj"])])
def test_missing_tie_word_embeddings_means_the_config_class_default(model_type: str, fields: dict) -> None:
    """save_pretrained leaves tie_word_embeddings out when it equals the class default: True for StarCoder2 and
    GPT-2 (PretrainedConfig's default), False for Llama and GPT-J. ftwiz read a missing key as untied for all
    but Gemma and Falcon, counting a second vocab x hidden matrix (bigcode/starcoder2-3b: +150M parameters)."""
    from ftwiz.core.planner.spec import spec_from_config

    config, model = saved_config(model_type, fields)
    config.pop("tie_word_embeddings", None)  # as many published files have it: left out, the default meant
    spec = spec_from_config(config)
    # within 1% (StarCoder2's o_proj and MLP biases are not counted); an untied lm_head here is +10%
    assert spec.total_params == pytest.approx(sum(p.numel() for p in model.parameters()), rel=0.01)
    assert spec.tied_embeddings is model.config.tie_word_embeddings


def test_a_model_type_transformers_does_not_know_is_read_as_transformers_loads_it() -> None:
    """No config class to ask (a remote-code model): transformers 5 ties the embeddings only when the config says
    so (PreTrainedModel.tie_weights reads a missing tie_word_embeddings as False), so the lm_head is counted;
    the estimate still carries the unknown-type warning. Oracle: the installed transformers."""
    import transformers
    from ftwiz.core.planner.spec import spec_from_config

    loads_tied = getattr(transformers.PretrainedConfig(), "tie_word_embeddings", False)
    config = {"model_type": "brandnew", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 128, "vocab_size": 100}
    spec = spec_from_config(config)
    assert spec.tied_embeddings is bool(loads_tied) and spec.lm_head_params == (0 if loads_tied else 100 * 64)
    assert spec_from_config({**config, "tie_word_embeddings": True}).lm_head_params == 0
    assert "unknown model type 'brandnew'" in spec.warnings[0]
