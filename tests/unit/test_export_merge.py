"""Streamed merge against peft's own merge_and_unload: the merged weights must be the same numbers.

A user notices a merge that silently drops the fine-tune (4-bit merge, wrong scale, DoRA ignored) only
after deploying; comparing every tensor with peft's reference merge catches all of these.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def make_adapter(base: Path, out: Path, *, targets=LINEAR, dora: bool = False, r: int = 4, alpha: int = 8,
                 rslora: bool = False, seed: int = 0, modules_to_save=None):
    """A peft adapter with non-zero lora_B (peft initialises B to zero, which would merge to nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), use_dora=dora, use_rslora=rslora,
                        task_type="CAUSAL_LM", modules_to_save=modules_to_save)
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
            elif "lora_magnitude_vector" in name:
                param.mul_(1 + 0.2 * torch.rand(param.shape, generator=generator))
            elif "modules_to_save" in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    peft_model.save_pretrained(out)
    return peft_model


def _assert_same_as_peft(peft_model, merged: Path, atol: float = 1e-5) -> None:
    import torch
    from safetensors.torch import load_file

    reference = peft_model.merge_and_unload().state_dict()
    ours: dict = {}
    for file in merged.glob("*.safetensors"):
        ours.update(load_file(str(file)))
    assert ours, "no weights written"
    for name, tensor in ours.items():
        ref = reference[name].to(tensor.dtype)
        assert tensor.shape == ref.shape, name
        assert torch.allclose(tensor.float(), ref.float(), atol=atol, rtol=1e-5), (
            f"{name}: max diff {(tensor.float() - ref.float()).abs().max():.3g}")


def test_lora_merge_matches_peft_including_embedding(tiny_llama: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.merge import merge_adapter

    peft_model = make_adapter(tiny_llama, tmp_path / "adapter", targets=(*LINEAR, "embed_tokens"))
    seen: list[int] = []
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged", progress=lambda d, t, m: seen.append(d))
    _assert_same_as_peft(peft_model, out)
    assert seen and seen[-1] == len(seen)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out).chat_template == AutoTokenizer.from_pretrained(tiny_llama).chat_template


def test_dora_and_rslora_merge_match_peft(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.merge import merge_adapter

    peft_model = make_adapter(tiny_qwen2, tmp_path / "adapter", dora=True, rslora=True, r=8, alpha=4)
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    _assert_same_as_peft(peft_model, out)


def test_modules_to_save_replace_base_tensors(tiny_qwen3: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.merge import merge_adapter

    peft_model = make_adapter(tiny_qwen3, tmp_path / "adapter", targets=("q_proj", "v_proj"),
                              modules_to_save=["lm_head"])
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    _assert_same_as_peft(peft_model, out)


def test_bf16_base_stays_bf16_and_merges_in_fp32(tiny_llama: Path, tmp_path: Path) -> None:
    import torch
    from ftwiz.core.export.merge import merge_adapter
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny_llama / name).is_file():
            shutil.copy(tiny_llama / name, base / name)
    peft_model = make_adapter(tiny_llama, tmp_path / "adapter")
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base_dir=base)
    merged = load_file(str(out / "model.safetensors"))
    assert merged["model.layers.0.self_attn.q_proj.weight"].dtype == torch.bfloat16
    lora_q = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    delta = (lora_q.lora_B["default"].weight @ lora_q.lora_A["default"].weight) * lora_q.scaling["default"]
    base_q = load_file(str(base / "model.safetensors"))["model.layers.0.self_attn.q_proj.weight"]
    expected = (base_q.float() + delta.detach()).to(torch.bfloat16)
    assert torch.equal(merged["model.layers.0.self_attn.q_proj.weight"], expected)


def test_merge_from_run_directory_uses_run_card_base(tiny_qwen2: Path, tmp_path: Path, ftwiz_env) -> None:
    from ftwiz.core.export.merge import merge_adapter
    from ftwiz.core.rundir import RunDir

    run = RunDir(ftwiz_env["runs"] / "merge-run")
    run.root.mkdir(parents=True, exist_ok=True)
    run.recipe.write_text("model_name_or_path: x\n")
    run.run_card.write_text(json.dumps({"base_model": str(tiny_qwen2), "method": "lora"}))
    peft_model = make_adapter(tiny_qwen2, run.adapter)
    cfg = json.loads((run.adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/nonexistent/elsewhere"  # the run card must win
    (run.adapter / "adapter_config.json").write_text(json.dumps(cfg))
    out = merge_adapter("merge-run", run.merged)
    _assert_same_as_peft(peft_model, out)


def test_merging_into_4bit_base_is_refused(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.merge import merge_adapter

    make_adapter(tiny_qwen2, tmp_path / "adapter")
    base = tmp_path / "base4"
    shutil.copytree(tiny_qwen2, base)
    cfg = json.loads((base / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FtwizError) as info:
        merge_adapter(tmp_path / "adapter", tmp_path / "merged", base_dir=base)
    assert "quantized" in info.value.what and "16-bit" in info.value.fix
    assert not (tmp_path / "merged").exists()


def test_adapter_for_another_model_is_refused(tiny_qwen2: Path, tiny_qwen3: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.merge import merge_adapter

    make_adapter(tiny_qwen3, tmp_path / "adapter")  # qwen3's q_proj is 128 x 64, qwen2's 64 x 64
    with pytest.raises(FtwizError, match="shape|does not have"):
        merge_adapter(tmp_path / "adapter", tmp_path / "merged", base_dir=tiny_qwen2)
    assert not (tmp_path / "merged").exists()


def test_existing_output_folder_needs_overwrite(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.merge import merge_adapter

    make_adapter(tiny_qwen2, tmp_path / "adapter")
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "keep.txt").write_text("mine")
    with pytest.raises(FtwizError, match="already exists"):
        merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    assert (tmp_path / "merged" / "keep.txt").read_text() == "mine"


def test_lora_on_tied_head_unties_and_keeps_behaviour(tiny_qwen2: Path, tmp_path: Path) -> None:
    """LoRA on lm_head of a tied model changes only the head in training; merging it into the shared matrix
    would change the input embeddings too. The merge unties instead: same logits as the trained model."""
    import torch
    from ftwiz.core.export.merge import merge_adapter
    from transformers import AutoModelForCausalLM

    peft_model = make_adapter(tiny_qwen2, tmp_path / "adapter", targets=("q_proj", "lm_head"))
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    ids = torch.tensor([[3, 50, 77, 120, 9]])
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        got = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4)


def test_modules_to_save_head_of_tied_model_unties_like_peft(tiny_qwen2: Path, tmp_path: Path) -> None:
    """modules_to_save=["lm_head"] on a tied model (Qwen2) trains a separate head; peft's merge_and_unload
    unties the head from the embeddings. The merge did the same only for LoRA on the head; a replaced head
    crashed with KeyError: 'lm_head'."""
    from ftwiz.core.export.merge import merge_adapter

    peft_model = make_adapter(tiny_qwen2, tmp_path / "adapter", targets=("q_proj",), modules_to_save=["lm_head"])
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    _assert_same_as_peft(peft_model, out)


@pytest.mark.parametrize("indices", [[5, 100, 7], {"embed_tokens": [3, 9]}], ids=["list", "by-module"])
def test_trainable_token_rows_merge_like_peft(tiny_llama: Path, tiny_qwen2: Path, tmp_path: Path, indices) -> None:
    """peft's trainable_token_indices (new tokens' embeddings trained without LoRA) saves the trained rows as
    ``embed_tokens.token_adapter.trainable_tokens_delta``; merge_and_unload writes them into the embeddings
    (of both ends of a tied model). The merge refused such an adapter, telling the user to pick another base."""
    import torch
    from ftwiz.core.export.merge import merge_adapter
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for base in (tiny_llama, tiny_qwen2):
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"],
                                                      trainable_token_indices=indices, task_type="CAUSAL_LM"))
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for param in peft_model.parameters():
                if param.requires_grad:
                    param.add_(torch.randn(param.shape, generator=generator) * 0.5)
        adapter = tmp_path / f"adapter-{base.name}"
        peft_model.save_pretrained(adapter)
        out = merge_adapter(adapter, tmp_path / f"merged-{base.name}", base_dir=base)
        _assert_same_as_peft(peft_model, out)


def test_adapter_trained_after_adding_tokens_merges_like_peft(tiny_llama: Path, tmp_path: Path) -> None:
    """Tokens added before training: the base is resized, peft saves the embeddings and head whole (with the
    frozen resized copies as ``*.original_module.weight``) and the tokenizer beside the adapter. Merged as
    peft does, with vocab_size following the new rows; it was refused ('the adapter replaces
    lm_head.original_module.weight, which the base model does not have')."""
    import torch
    from ftwiz.core.export.merge import merge_adapter
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|tool|>", "<|/tool|>", "<|note|>"]})
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], task_type="CAUSAL_LM",
                                                  modules_to_save=["embed_tokens", "lm_head"]))
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for param in peft_model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    peft_model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base_dir=tiny_llama)
    _assert_same_as_peft(peft_model, out)
    assert json.loads((out / "config.json").read_text())["vocab_size"] == len(tokenizer)
    assert AutoTokenizer.from_pretrained(out).convert_tokens_to_ids("<|note|>") == len(tokenizer) - 1


def test_gemma3_image_text_adapter_merges_into_its_checkpoint(tmp_path: Path) -> None:
    """Gemma 3 4B and larger are Gemma3ForConditionalGeneration: stored as language_model.model.layers.*, held
    by transformers as model.language_model.layers.*, which is how peft names the adapter. The merge refused
    every such adapter ('the adapter modifies model.language_model.layers.0.self_attn.q_proj, which the base
    model does not have'). Oracle: peft's merge_and_unload, against the merged folder loaded by transformers."""
    import torch
    import transformers
    from ftwiz.core.export.merge import merge_adapter
    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open
    from spm_models import gemma3_image_text

    base = gemma3_image_text(tmp_path / "g3mm")
    with safe_open(base / "model.safetensors", "pt") as stored:
        stored_names = stored.keys()
    assert any(k.startswith("language_model.model.layers.") for k in stored_names)  # the layout on disk
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM",
                                                  target_modules=r".*language_model.*\.(q_proj|v_proj|down_proj)"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    peft_model.save_pretrained(tmp_path / "adapter")
    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base_dir=base)
    reference = peft_model.merge_and_unload().state_dict()
    merged = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    assert set(merged) == set(reference)
    for name, tensor in merged.items():
        assert torch.allclose(tensor, reference[name], atol=1e-5), name


def test_adapter_of_a_prequantized_repo_asks_for_its_16_bit_original(tiny_qwen2: Path, tmp_path: Path) -> None:
    """Unsloth's adapters name a bitsandbytes copy as their base (unsloth/X-bnb-4bit). Not in the cache, the
    merge said to pull exactly that repo, which it then refuses (4-bit weights round the fine-tune away); it
    now names the 16-bit model, and says nothing about pulling the 4-bit one."""
    from ftwiz.core.export.merge import merge_adapter

    make_adapter(tiny_qwen2, tmp_path / "adapter", targets=("q_proj",))
    config_path = tmp_path / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "base_model_name_or_path": "unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit"}))
    with pytest.raises(FtwizError) as info:
        merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    assert "16-bit original" in info.value.what
    assert info.value.fix == ("ftwiz pull unsloth/Qwen2.5-0.5B-Instruct, then merge with --base "
                              "unsloth/Qwen2.5-0.5B-Instruct")
    assert not (tmp_path / "merged").exists()
