"""Choose a plan that fits: method, micro-batch, accumulation, checkpointing, length, optimizer, dtype.

The search is small and exhaustive over what matters (method x checkpointing x micro-batch), scored by
expected speed, and every choice is explained in a sentence. Whatever the user fixed in the recipe
(``model_fields_set``) is respected, never overridden. When nothing fits, the plan says so and says what
would: a shorter max length, QLoRA, or a smaller model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ftwiz.core.errors import FtwizError
from ftwiz.core.hardware.report import HardwareReport
from ftwiz.core.planner.estimator import TrainSetup, estimate_memory, lora_params, peak_bytes, stage_note
from ftwiz.core.planner.plan import MemoryEstimate, Plan
from ftwiz.core.planner.spec import ModelSpec, load_model_spec
from ftwiz.core.recipe import Recipe

GIB = 1024**3
SAFETY_MARGIN = 0.05  # keep 5% free beyond the modelled fragmentation: other processes, driver growth
CPU_RAM_SHARE = 0.80  # on CPU, leave a fifth of the available RAM to the OS and the data pipeline
MICRO_BATCHES = (1, 2, 4, 8, 16, 32)
CHECKPOINTING_SLOWDOWN = 1.33  # recomputing the forward pass costs about a third more time

# Assumed sustained training throughput (FLOP/s) by device class: labelled as an estimate everywhere.
ASSUMED_FLOPS = {"cpu": 5e10, "mps": 3e12, "cuda-old": 8e12, "cuda-ampere": 3e13, "cuda-hopper": 2e14}


@dataclass(frozen=True)
class Budget:
    device: str
    total_bytes: int
    usable_bytes: int
    label: str
    bf16: bool
    compute_capability: tuple[int, int] | None = None
    given: bool = False  # --vram-gb: a card the user names, not one detected here (its features are assumed)


def memory_budget(hardware: HardwareReport | None, vram_gb: float | None = None) -> Budget:
    """What training may use: the GPU's free VRAM (or ``--vram-gb``), else the machine's RAM, minus a margin."""
    if vram_gb is not None:
        if vram_gb <= 0 or vram_gb > 4096:
            raise FtwizError(f"--vram-gb {vram_gb} is not a plausible amount of GPU memory",
                             fix="give the card's memory in GiB, e.g. --vram-gb 8 for an 8 GB card")
        total = int(vram_gb * GIB)
        return Budget("cuda", total, int(total * (1 - SAFETY_MARGIN)), f"{vram_gb:g} GiB GPU (given)", bf16=True,
                      compute_capability=(8, 0), given=True)
    if hardware is not None and hardware.device in ("cuda", "mps") and hardware.best_gpu is not None:
        gpu = hardware.best_gpu
        free = gpu.free_bytes if gpu.free_bytes is not None else gpu.total_bytes
        return Budget(hardware.device, gpu.total_bytes, int(free * (1 - SAFETY_MARGIN)),
                      f"{gpu.name} ({free / GIB:.1f} GiB free of {gpu.total_bytes / GIB:.1f})", bf16=gpu.bf16,
                      compute_capability=gpu.compute_capability)
    if hardware is not None and hardware.ram_available_bytes:
        ram = hardware.ram_available_bytes
    else:
        import psutil

        ram = psutil.virtual_memory().available
    return Budget("cpu", ram, int(ram * CPU_RAM_SHARE), f"CPU with {ram / GIB:.1f} GiB RAM available", bf16=False)


def packed_rows(lengths: list[int], cutoff_len: int) -> list[int]:
    """Row lengths of greedy packing in record order, as ``ftwiz.core.data.tokenize.pack`` fills them."""
    rows: list[int] = []
    current = 0
    for n in (min(length, cutoff_len) for length in lengths):
        if current and current + n > cutoff_len:
            rows.append(current)
            current = 0
        current += n
    return rows + ([current] if current else [])


def choose_max_length(cutoff_len: int, lengths: list[int] | None, seq_len: int | None,
                      packing: bool = False) -> tuple[int, str]:
    """The padded length that sets the peak: the longest sample (rounded up to 64), capped by cutoff_len.

    The longest batch sets the peak, so a percentile would under-plan exactly the step that crashes. With
    ``packing`` a row holds several samples, up to cutoff_len tokens: the fullest row sets the peak.
    """
    if seq_len is not None:
        if seq_len < 16:
            raise FtwizError(f"--seq-len {seq_len} is too short to train on", fix="use at least 16 tokens")
        return seq_len, f"max length {seq_len} tokens, as given"
    if not lengths:
        return cutoff_len, f"max length {cutoff_len} tokens from the recipe's cutoff_len (no dataset lengths known)"
    if packing:
        fullest = max(packed_rows(lengths, cutoff_len))
        rounded = min(cutoff_len, max(64, math.ceil(fullest / 64) * 64))
        return rounded, (f"max length {rounded} tokens: packing puts several of your {len(lengths)} samples in each "
                         f"row of up to cutoff_len {cutoff_len} tokens (the fullest has {fullest})")
    longest = max(lengths)
    rounded = min(cutoff_len, max(64, math.ceil(longest / 64) * 64))
    if longest > cutoff_len:
        longer = sum(length > cutoff_len for length in lengths)
        return rounded, (f"max length {rounded} tokens (cutoff_len): {longer} of your {len(lengths)} samples are "
                         "longer and are dropped or truncated (overlength)")
    return rounded, f"max length {rounded} tokens: the longest of your {len(lengths)} samples has {longest} tokens"


def _dtype(recipe: Recipe, budget: Budget) -> tuple[str, str]:
    if recipe.compute_dtype != "auto":
        return recipe.compute_dtype, f"{recipe.compute_dtype} as set in the recipe"
    if budget.device == "cpu":
        return "fp32", "fp32: CPUs train in full precision (16-bit math is slow or missing there)"
    if budget.bf16 and budget.given:
        return "bf16", ("bf16: assumed for the card you gave (compute capability 8.0 or newer, e.g. RTX 30/40 series); "
                        "on an older card training would use fp16")
    if budget.bf16:
        return "bf16", "bf16: your GPU supports it natively (compute capability 8.0 or newer), and it is stable"
    return "fp16", "fp16 with loss scaling: this GPU has no native bf16 (compute capability below 8.0)"


def _optimizer(recipe: Recipe, method: str, device: str) -> tuple[str, str]:
    if recipe.optim:
        return recipe.optim, f"optimizer {recipe.optim} as set in the recipe"
    if device != "cuda":
        return "adamw_torch_fused", "fused AdamW: paged and 8-bit optimizers need CUDA; the fused kernel is the fastest"
    if method in ("qlora", "full"):
        return "paged_adamw_8bit", ("paged 8-bit AdamW: a quarter of AdamW's state memory, and pages to RAM "
                                    "instead of crashing on a memory spike")
    return "adamw_torch_fused", "fused AdamW: LoRA's optimizer state is small, so full-precision AdamW costs little"


def _assumed_flops(budget: Budget) -> float:
    if budget.device != "cuda":
        return ASSUMED_FLOPS[budget.device]
    major = (budget.compute_capability or (7, 0))[0]
    return ASSUMED_FLOPS["cuda-hopper" if major >= 9 else "cuda-ampere" if major >= 8 else "cuda-old"]


def seconds_per_epoch(spec: ModelSpec, setup: TrainSetup, tokens: int, budget: Budget) -> float:
    """6 x params FLOPs per token for full training; LoRA skips the frozen weights' gradients (~4 x). The
    parameters a token runs through: a mixture of experts' active ones (``spec.active_params``)."""
    flops_per_token = (6 if setup.method == "full" else 4) * spec.active_params
    seconds = tokens * flops_per_token / _assumed_flops(budget)
    return seconds * (CHECKPOINTING_SLOWDOWN if setup.grad_ckpt else 1.0)


def _fits(spec: ModelSpec, setup: TrainSetup, budget: Budget) -> tuple[bool, dict[str, int]]:
    parts = estimate_memory(spec, setup)
    return peak_bytes(parts) <= budget.usable_bytes, parts


def _candidates(recipe: Recipe, fixed: set[str], budget: Budget) -> list[str]:
    if "finetuning_type" in fixed or "quantization_bit" in fixed:
        return [recipe.finetuning_type]
    # LoRA first (faster, no quantization error), QLoRA when LoRA does not fit; full only on request.
    return ["lora", "qlora"] if budget.device == "cuda" else ["lora"]


def _search(spec: ModelSpec, recipe: Recipe, fixed: set[str], method: str, base: TrainSetup,
            budget: Budget) -> tuple[TrainSetup, dict[str, int]] | None:
    """The fastest fitting (checkpointing, micro-batch): speed ~ micro-batch, checkpointing costs a third."""
    ckpt_options = [recipe.gradient_checkpointing] if recipe.gradient_checkpointing is not None else [False, True]
    if recipe.per_device_train_batch_size is not None:
        batches = [recipe.per_device_train_batch_size]
    else:
        batches = [b for b in MICRO_BATCHES if b <= max(1, recipe.effective_batch_size)]
    best: tuple[float, TrainSetup, dict[str, int]] | None = None
    for ckpt in ckpt_options:
        for micro in batches:
            setup = replace(base, method=method, grad_ckpt=ckpt, micro_batch=micro)
            ok, parts = _fits(spec, setup, budget)
            if not ok:
                break  # a larger micro-batch needs more memory still
            score = min(micro, 8) / (CHECKPOINTING_SLOWDOWN if ckpt else 1.0)
            if best is None or score > best[0]:
                best = (score, setup, parts)
    return None if best is None else (best[1], best[2])


def plan_recipe(recipe: Recipe, hardware: HardwareReport | None = None, *, vram_gb: float | None = None,
                dataset_lengths: list[int] | None = None, seq_len: int | None = None,
                spec: ModelSpec | None = None) -> Plan:
    """The recommended plan for ``recipe`` on this hardware (or ``vram_gb``), with reasons."""
    spec = spec or load_model_spec(recipe.model_name_or_path)
    budget = memory_budget(hardware, vram_gb)
    fixed = set(recipe.model_fields_set)
    max_len, length_reason = choose_max_length(recipe.cutoff_len, dataset_lengths, seq_len, recipe.packing)
    dtype, dtype_reason = _dtype(recipe, budget)
    reasons = [f"budget: {budget.usable_bytes / GIB:.1f} GiB usable on {budget.label}, keeping "
               f"{SAFETY_MARGIN if budget.device != 'cpu' else 1 - CPU_RAM_SHARE:.0%} free as a safety margin",
               length_reason, dtype_reason]
    warnings = list(spec.warnings) + ([export_note(spec)] if export_note(spec) else [])
    context = spec.max_position_embeddings
    if isinstance(context, int) and max_len > context:  # memory is no check of this: the plan may well fit
        warnings.append(f"max length {max_len} tokens is longer than the model's context (max_position_embeddings "
                        f"{context}): positions past it were never trained, so answers degrade (a learned position "
                        f"table fails outright); set cutoff_len: {context} or less")

    chosen: tuple[TrainSetup, dict[str, int]] | None = None
    tried: list[str] = []
    for method in _candidates(recipe, fixed, budget):
        optimizer, _ = _optimizer(recipe, method, budget.device)
        base = TrainSetup(method=method, seq_len=max_len, lora_rank=recipe.lora_rank,
                          lora_targets=tuple(recipe.lora_target), dtype=dtype, optimizer=optimizer,
                          device=budget.device, stage=recipe.stage, packed=recipe.packing, sdpa_mask=True)
        chosen = _search(spec, recipe, fixed, method, base, budget)
        if chosen:
            if tried:
                reasons.append(f"{method}: {' and '.join(tried)} does not fit in this budget even at micro-batch 1 "
                               "with gradient checkpointing")
            break
        tried.append(method)

    fits = chosen is not None
    if chosen is None:
        method = _candidates(recipe, fixed, budget)[-1]
        optimizer, _ = _optimizer(recipe, method, budget.device)
        # The smallest setting, except what the user fixed: "will exactly this fit?" gets exactly this estimate.
        setup = TrainSetup(method=method, seq_len=max_len, micro_batch=recipe.per_device_train_batch_size or 1,
                           grad_ckpt=recipe.gradient_checkpointing is not False, lora_rank=recipe.lora_rank,
                           lora_targets=tuple(recipe.lora_target), dtype=dtype, optimizer=optimizer,
                           device=budget.device, stage=recipe.stage, packed=recipe.packing, sdpa_mask=True)
        parts = estimate_memory(spec, setup)
        warnings.append(_what_would_fit(spec, setup, budget, recipe, fixed))
    else:
        setup, parts = chosen
    optimizer, optimizer_reason = _optimizer(recipe, setup.method, budget.device)
    reasons.append(_method_reason(setup, spec, fixed, fits))
    reasons.append(_batch_reason(setup, recipe, fits))
    if stage_note(recipe.stage, setup.method):
        reasons.append(stage_note(recipe.stage, setup.method))
    reasons.append(optimizer_reason)
    if setup.method != "full":
        trainable = lora_params(spec, setup.lora_rank, setup.lora_targets)
        reasons.append(f"LoRA rank {setup.lora_rank} on {', '.join(setup.lora_targets)}: {trainable / 1e6:.1f}M "
                       f"trainable parameters ({trainable / spec.total_params:.2%} of the model)")
    grad_accum = recipe.gradient_accumulation_steps or max(1, math.ceil(recipe.effective_batch_size / setup.micro_batch))
    if recipe.gradient_accumulation_steps is None:
        reasons.append(f"gradient accumulation {grad_accum}: micro-batch {setup.micro_batch} x {grad_accum} keeps "
                       f"the effective batch at {setup.micro_batch * grad_accum} (target {recipe.effective_batch_size})")
    epoch_tokens = sum(min(n, max_len) for n in dataset_lengths) if dataset_lengths else None
    seconds = seconds_per_epoch(spec, setup, epoch_tokens, budget) if epoch_tokens else None
    plan = Plan(
        method=setup.method, device=budget.device, micro_batch=setup.micro_batch, grad_accum=grad_accum,
        gradient_checkpointing=setup.grad_ckpt, max_seq_len=max_len,
        lora_rank=None if setup.method == "full" else setup.lora_rank,
        lora_alpha=None if setup.method == "full" else recipe.resolved_lora_alpha,
        lora_targets=[] if setup.method == "full" else list(setup.lora_targets),
        optimizer=optimizer, dtype=dtype, fits=fits,
        estimate=MemoryEstimate(peak_bytes=peak_bytes(parts), parts=parts, budget_bytes=budget.usable_bytes),
        reasons=reasons, warnings=warnings, est_seconds_per_epoch=seconds,
    )
    if vram_gb is not None:
        return plan  # planned for another card: this machine's measurements do not apply
    from ftwiz.core.planner.measured import apply_measurements, model_key

    return apply_measurements(plan, model=model_key(recipe.model_name_or_path, recipe.revision), hardware=hardware,
                              fixed_batch=recipe.per_device_train_batch_size is not None,
                              fixed_ckpt=recipe.gradient_checkpointing is not None,
                              effective_batch=recipe.effective_batch_size, epoch_tokens=epoch_tokens, spec=spec,
                              stage=recipe.stage, packed=recipe.packing)


def export_note(spec: ModelSpec) -> str | None:
    """A warning when ``ftwiz export`` cannot write the model's architecture as GGUF (None when it can, or
    when config.json names no architecture): training works, but the user learns it before a long run."""
    from ftwiz.core.export.arch import ARCHITECTURES, MULTIMODAL_TEXT

    if not spec.architecture or spec.architecture in ARCHITECTURES or spec.architecture in MULTIMODAL_TEXT:
        return None
    return (f"ftwiz export cannot write {spec.architecture} ({spec.model_type}) as GGUF: training, merge and the "
            "adapter work, but export, register and serve need one of "
            f"{', '.join(sorted({*ARCHITECTURES, *MULTIMODAL_TEXT}))}")


def _method_reason(setup: TrainSetup, spec: ModelSpec, fixed: set[str], fits: bool) -> str:
    method = setup.method
    count = spec.total_params  # a tiny model is "0.9M", not "0.00B"
    size = (f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.1f}M") + "-parameter"
    if "finetuning_type" in fixed or "quantization_bit" in fixed:
        return f"method {method}: as set in the recipe"
    if method == "lora":
        return f"method LoRA: the {size} model fits in 16-bit, so no quantization error is needed"
    # As the estimate beside it counts them: ftwiz's QLoRA keeps the dense parts in the compute dtype
    # (core/train/model_setup.py), not in peft's fp32 upcast (TrainSetup.kbit_upcast, off in plans).
    wide = setup.dtype == "fp32" or setup.device == "cpu" or setup.kbit_upcast
    dense = (spec.embedding_params + spec.lm_head_params + spec.norm_params) * (4 if wide else 2) / GIB
    verdict = "so it fits" if fits else "yet it still does not fit"
    if not spec.quantizable:  # spec.NOT_QUANTIZED: 4-bit loading leaves these linears 16-bit
        return (f"method QLoRA, {verdict}: but the {size} {spec.model_type} model's linear layers are a subclass "
                "of nn.Linear that transformers' 4-bit loading does not quantize, so they stay 16-bit and QLoRA "
                "needs about what LoRA does")
    experts = ""
    if spec.expert_params:  # see spec.py: bitsandbytes quantizes nn.Linear layers only
        experts = (f"; its {spec.num_experts} experts per layer ({spec.expert_params / 1e9:.1f}B parameters, "
                   f"{spec.expert_params * (4 if wide else 2) / GIB:.1f} GiB) are 3-D tensors that 4-bit "
                   "quantization leaves 16-bit")
    return (f"method QLoRA: the {size} model's linear layers are stored in 4-bit NF4 (about a quarter of 16-bit), "
            f"{verdict}; the adapter still trains in full precision, and the embeddings and output layer stay "
            f"{'fp32' if wide else '16-bit'} ({dense:.1f} GiB){experts}")


def _batch_reason(setup: TrainSetup, recipe: Recipe, fits: bool) -> str:
    if not fits:
        if recipe.per_device_train_batch_size is None and recipe.gradient_checkpointing is None:
            return "micro-batch 1 with gradient checkpointing: the smallest setting, and it still does not fit"
        return (f"micro-batch {setup.micro_batch} with gradient checkpointing {'on' if setup.grad_ckpt else 'off'}, "
                "as set: it does not fit")
    ckpt = ("gradient checkpointing on: it recomputes activations (about 33% slower) to save memory"
            if setup.grad_ckpt else "gradient checkpointing off: there is room for activations, so training is faster")
    if recipe.per_device_train_batch_size is not None:
        return f"micro-batch {setup.micro_batch} as set in the recipe; {ckpt}"
    return f"micro-batch {setup.micro_batch}: the fastest setting that fits; {ckpt}"


def _what_would_fit(spec: ModelSpec, setup: TrainSetup, budget: Budget, recipe: Recipe, fixed: set[str]) -> str:
    need = peak_bytes(estimate_memory(spec, setup))
    hints = [f"does not fit: needs about {need / GIB:.1f} GiB at micro-batch {setup.micro_batch} with checkpointing "
             f"{'on' if setup.grad_ckpt else 'off'}, "
             f"{budget.usable_bytes / GIB:.1f} GiB usable"]
    length = setup.seq_len
    while length > 128:
        length //= 2
        if peak_bytes(estimate_memory(spec, replace(setup, seq_len=length))) <= budget.usable_bytes:
            hints.append(f"a max length of {length} tokens would fit (cutoff_len: {length})")
            break
    qlora = replace(setup, method="qlora", optimizer="paged_adamw_8bit")
    if setup.method != "qlora" and budget.device == "cuda" and _fits(spec, qlora, budget)[0]:
        hints.append("QLoRA would fit (finetuning_type: qlora)")
    ratio = budget.usable_bytes / need
    hints.append(f"a model about {max(ratio, 0.05) * spec.total_params / 1e9:.1f}B parameters or smaller would fit "
                 "with the same settings")
    return "; ".join(hints)
