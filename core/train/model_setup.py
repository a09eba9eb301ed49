"""Load the base model for a plan: 16/32-bit for LoRA and full, 4-bit NF4 for QLoRA; wrap it in peft.

QLoRA follows the paper's recipe: NF4 storage, double quantization, 16-bit compute on GPU (fp32 on CPU,
where bitsandbytes also runs 4-bit), frozen base, input grads for checkpointing. Unlike peft's
``prepare_model_for_kbit_training``, the 16-bit parameters that are not quantized (embeddings, lm_head,
norms) stay 16-bit, as in LLaMA-Factory (``upcast_layernorm`` off by default) and Unsloth: peft casts them
all to fp32, which on Llama-3.1-8B costs 2 GB more weights, an fp32 residual stream (2 B more per hidden
value per layer) and a 16-bit autocast copy of lm_head -- the difference between fitting an 8 GB card and
not. They are frozen, so fp32 copies buy no precision in the update; RMSNorm computes in fp32 regardless.
LoRA adapters stay fp32 so small updates are not lost to rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.planner.plan import Plan
from ftwiz.core.recipe import Recipe

TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def torch_dtype(name: str):
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def _quantization_config(plan: Plan):
    from transformers import BitsAndBytesConfig

    compute = "float32" if plan.device == "cpu" else TORCH_DTYPES[plan.dtype]
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, bnb_4bit_quant_storage="uint8")


def load_model(model_dir: Path, recipe: Recipe, plan: Plan):
    """The base model placed on the plan's device, in the plan's storage type."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": recipe.trust_remote_code, "use_safetensors": True}
    dtype = "fp32" if plan.device == "cpu" else plan.dtype
    if plan.method == "qlora":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise FtwizError(f"QLoRA needs bitsandbytes, which does not import here ({exc})",
                             fix="pip install bitsandbytes, or use finetuning_type: lora") from None
        kwargs["quantization_config"] = _quantization_config(plan)
        kwargs["device_map"] = {"": 0} if plan.device == "cuda" else {"": "cpu"}
        kwargs["dtype"] = torch.float32 if plan.device == "cpu" else torch_dtype(dtype)
    else:
        kwargs["dtype"] = torch_dtype(dtype)
    from safetensors import SafetensorError

    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    except OSError as exc:
        raise FtwizError(f"cannot load the model from {model_dir}: {exc}",
                         fix="check that the folder holds config.json and *.safetensors weights") from None
    except SafetensorError as exc:  # a shard cut short by an interrupted download or copy
        raise FtwizError(f"a weights file of {model_dir} is damaged: {exc}", where=Location(file=model_dir),
                         fix=f"fetch or copy the model again; `ftwiz export {model_dir} --check` names the file") from None
    if plan.method != "qlora" and plan.device != "cpu":
        model.to(plan.device)
    if plan.method == "qlora" and plan.device == "cpu":
        keep_4bit_weights_trainable(model)
    model.config.use_cache = False  # the KV cache is useless in training and costs memory
    return model


def apply_lora(model, recipe: Recipe, plan: Plan):
    """Wrap the model with a LoRA (or DoRA) adapter over a frozen base (16-bit parts stay 16-bit: see above)."""
    from peft import LoraConfig, get_peft_model

    for param in model.parameters():
        param.requires_grad = False
    if recipe.adapter_name_or_path:
        return load_adapter(model, recipe)
    targets: str | list[str] = plan.lora_targets or list(recipe.lora_target)
    if targets in (["all"], ["all-linear"]):
        targets = "all-linear"
    config = LoraConfig(r=plan.lora_rank or recipe.lora_rank, lora_alpha=plan.lora_alpha or recipe.resolved_lora_alpha,
                        lora_dropout=recipe.lora_dropout, target_modules=targets, use_dora=recipe.use_dora,
                        bias="none", task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, config)
    except ValueError as exc:
        raise FtwizError(f"LoRA targets {targets} do not match this model: {exc}", where="recipe: lora_target",
                         fix="use lora_target: all, or module names such as q_proj,v_proj") from None
    return model


def resolve_adapter(name_or_path: str) -> Path:
    """An adapter folder from ``adapter_name_or_path``: a folder holding adapter_config.json, a run folder, or
    a run name (its ``adapter/``). Raises FtwizError naming the recipe key when none is found."""
    from ftwiz.core.rundir import RunDir

    path = Path(name_or_path).expanduser()
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    try:
        run = RunDir.resolve(name_or_path)
    except FtwizError:
        run = None
    if run is not None and (run.adapter / "adapter_config.json").is_file():
        return run.adapter
    there = ("the folder has no adapter_config.json" if path.is_dir() else "that is a file, not a folder"
             if path.exists() else "no such folder")
    raise FtwizError(f"no LoRA adapter at '{name_or_path}' ({there}, and no completed run of that name with an "
                     "adapter)", where="recipe: adapter_name_or_path",
                     fix="give a run name (`ftwiz train --from RUN`) or a folder holding adapter_config.json")


def load_adapter(model, recipe: Recipe):
    """Continue training the adapter of an earlier run (the usual SFT -> DPO sequence)."""
    from peft import PeftModel

    path = resolve_adapter(recipe.adapter_name_or_path or "")
    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=True)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise FtwizError(f"the adapter at {path} does not fit this base model ({exc})",
                         where="recipe: adapter_name_or_path",
                         fix="use the same model_name_or_path the adapter was trained on") from None


def keep_4bit_weights_trainable(model) -> None:
    """Keep every bitsandbytes 4-bit layer of ``model`` in the layout its training kernels read, on the CPU.

    bitsandbytes 0.50 repacks a CPU 4-bit weight for its AVX512-BF16 inference kernel the first time the layer
    runs in eval mode without grad (the packing isolation check, an evaluation pass) and never packs it back,
    so the next training step fails inside bitsandbytes ("a view of a leaf Variable that requires grad is
    being used in an in-place operation") on CPUs that have the instructions (AMD Zen 4, Intel Sapphire
    Rapids) and on no others. Turning the repack off per layer keeps training and evaluation on one layout;
    releases without the attribute are left as they are.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def build_model(model_dir: Path, recipe: Recipe, plan: Plan):
    """Base model plus adapter (or the full model), ready for the Trainer."""
    model = load_model(model_dir, recipe, plan)
    if plan.method in ("lora", "qlora"):
        model = apply_lora(model, recipe, plan)
    if plan.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return model


def trainable_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
