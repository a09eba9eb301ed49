"""Peak training memory as a sum of documented, physical parts (bytes). No per-model fitted constants.

What is predicted: the sum of the parts (:func:`peak_bytes`) is what the device shows for the process
(``nvidia-smi``), CUDA context included; :func:`torch_counted` is torch's own reserved/allocated view.
Checked by ``bench/planner_accuracy.py`` against published measurements (each row cites its URL), and on
a real GPU by ``bench/gpu_check.sh`` (``ftwiz plan --probe`` reads NVML's per-process figure and the
allocator's peaks through the hardware seam, so each part below can be compared with a measurement).

Parts (see :func:`estimate_memory`):
- ``cuda_context``: the CUDA context and kernels (~450 MiB with CUDA's lazy module loading, the default
  since CUDA 11.7 / torch 1.13); not in torch's counters. The probe measures it per machine
  (``cuda_context_and_libraries`` = NVML process used - torch reserved).
- ``weights``: the base weights by storage type: 2 bytes (bf16/fp16) or 4 (fp32) per parameter; under
  QLoRA the block linears are NF4 (0.5 byte) plus quantization constants -- one fp32 absmax per 64
  weights (0.0625 B/param), or with double quantization an 8-bit absmax per 64 plus one fp32 per 256
  blocks (~0.0158 B/param) -- while embeddings, lm_head, norms and a mixture-of-experts model's routed
  experts (3-D tensors, not ``nn.Linear``: see ``spec.py``) stay 16-bit (ftwiz's own QLoRA, like
  LLaMA-Factory's and Unsloth's: ``core/train/model_setup.py``). peft's ``prepare_model_for_kbit_training``
  (what TRL calls when given a peft_config, and the HF stack of Unsloth's table; ``kbit_upcast``) casts
  every non-quantized parameter to fp32 (peft/utils/other.py: "cast all non INT8 parameters to fp32"):
  embeddings, lm_head and norms then cost 4 B/param, the residual stream they feed is fp32 (4 B per
  checkpointed hidden value), and autocast's 16-bit copy of lm_head is saved for backward
  (``autocast_copies``, 2 B/param).
- ``trainable_weights``/``gradients``/``optimizer_states``: LoRA adapters live in fp32 (peft upcasts
  them): 4 B weight + 4 B grad + AdamW's two fp32 moments (8 B), or 2 B with 8-bit AdamW. Full
  fine-tuning keeps grads and (torch AdamW) moments in the weights' dtype. Paged optimizers keep their
  states in CUDA unified memory that is evicted to host RAM under pressure: they cannot cause an OOM,
  so they are reported as ``optimizer_states_paged`` and not added to the peak.
- ``engine="deepspeed-zero2"`` (what Qwen's finetune scripts run: ``--deepspeed ds_config_zero2.json``;
  ftwiz itself trains with the plain Trainer, ``engine="trainer"``). DeepSpeed's engine casts the whole
  module to bf16/fp16 (``DeepSpeedEngine._configure_distributed_model``: ``module.bfloat16()``), and its
  ZeRO-1/2 optimizer (``runtime/zero/stage_1_and_2.py``) keeps, per trainable parameter: the 16-bit
  weight (flattened) + an fp32 master copy (``single_partition_of_fp32_groups``) = ``trainable_weights``
  2 + 4 B; a 16-bit gradient partition (``grads_in_partition``, contiguous_gradients) and, at the step,
  its flattened copy and the fp32 gradient built from it (``flatten_dense_tensors_aligned(...).to(fp32)``)
  = ``gradients`` 2 + 2 + 4 B; FusedAdam's two fp32 moments = 8 B: 22 B in all (the Trainer path: 16 B).
  ``zero_buckets``: the reduction buffers ``ipg_buffer`` allocated in ``backward()``, ``reduce_bucket_size``
  elements of the 16-bit dtype, two of them with ``overlap_comm`` (Qwen's config: 2e8 and true, 0.75 GiB)
  -- a fixed cost that does not shrink with the model or the sequence. The README does not name the script
  behind its single-GPU LoRA column; the ZeRO-2 reading is the one its numbers support: without it the
  1.8B rows are 19% short (a 1.2 GiB intercept no sequence term explains), with it all 18 LoRA cells
  (1.8B-14B, 256-8192 tokens) land within -6%..+11%, and the same table's 1.8B full-parameter row
  (finetune_ds.sh, same config; not a bench row) within +3%..+7% at 256-1024 tokens.
- ``activations``: tensors saved for backward, per token per layer: RMSNorm inputs in fp32 and outputs
  (2 x (4h + 2h)), RoPE and SDPA saves (~8 x (q_out + kv_out) bytes), the MLP's gate/up/activation (3 x 2i
  gated, 2 x 2i otherwise), LoRA inputs (2 x in per target) and, for full fine-tuning, the inputs every
  linear needs for its weight gradient. Eager attention adds heads x seq x 6 bytes per token (softmax's fp32
  output and the 16-bit probabilities; +2 for tanh's output where scores are soft-capped): a model transformers
  cannot run with SDPA (Gemma 2: ``spec.NO_SDPA``) falls back to it. With gradient checkpointing only each
  layer's input (2h) is kept, plus one layer recomputed. Final-logit soft-capping (Gemma 2) keeps tanh's
  16-bit output over the logits saved through the loss: +2 B per logit. A 4-D bool attention mask (padded
  batches, packed rows: ``sdpa_mask``) costs 1 B per query x key once and, under SDPA, 2 B per query x key in
  every layer (PyTorch's per-call 16-bit additive copy, saved for backward); packing makes the key range the
  whole flattened micro-batch. Mixture-of-experts layers save each routed expert's input, gate/up and
  activation for the experts_per_token experts a token visits.
- ``logits``: tokens x vocabulary x the loss chain's peak bytes per element -- large for 150k-token
  vocabularies (``loss_chain``, read from the loss code of each stack):
  ``transformers`` (>= 4.48, ``loss_utils.ForCausalLMLoss`` shifts the labels, not the logits): forward holds
  the 16-bit logits, their fp32 upcast and the fp32 log-softmax output (2+4+4 B); backward holds the
  log-softmax output, its incoming gradient and the input gradient (4+4+4 B): 12 B.
  ``transformers-shift-copy`` (4.46-4.47, and remote-code models that slice ``logits[..., :-1, :]``):
  the ``.contiguous()`` shifted copy adds 4 B in forward: 2+4+4+4 = 14 B.
  ``simple`` (torchtune, litgpt): logits + one fp32 copy + its gradient (2+4+4 B).
  Chunked cross-entropy keeps one chunk of the fp32 copies at a time.
- ``temporary_buffers``: the largest transient: a dequantized weight (QLoRA) and the MLP gradient buffer.
- torch.compile fuses the loss like chunked cross-entropy (the ``chunked_ce`` knob).
- ``fragmentation``: the caching allocator's reserved-but-unused memory, ~15% of the transient
  allocations (activations, logits, gradients, buffers); persistent weights are allocated once and barely fragment.
- ``load_staging`` (only when a loader stages a whole checkpoint shard on the GPU, as torchtune's
  QLoRA recipe did with Llama-2's 9.98 GB .bin shard): the peak is the larger of loading and training.
- Older bitsandbytes saved every 4-bit matmul's input for backward (``quant_saves_input``); current
  releases keep only the quantized weight, so the planner leaves it off.
On CPU every 16-bit size becomes fp32 (4 B) and there is no CUDA context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ftwiz.core.planner.spec import ModelSpec

MiB = 1024**2
CUDA_CONTEXT_BYTES = 450 * MiB
FRAGMENTATION_TRANSIENT = 0.15
PAIRWISE_STAGES = ("dpo", "orpo")  # chosen + rejected in one forward: two sequences per example
REFERENCE_STAGES = ("dpo", "kto")  # a frozen reference model (a weight copy only under full fine-tuning)
NF4_CONSTANTS = {"nf4": 4 / 64, "nf4-dq": 1 / 64 + 4 / (64 * 256)}


@dataclass(frozen=True)
class TrainSetup:
    method: str  # full | lora | qlora
    seq_len: int
    micro_batch: int = 1
    grad_ckpt: bool = True
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = ("all",)
    dtype: str = "bf16"  # bf16 | fp16 | fp32
    optimizer: str = "adamw_torch"  # adamw_torch | adamw_8bit | paged_adamw_8bit | paged_adamw_32bit
    quant: str = "nf4-dq"  # for qlora: nf4 | nf4-dq
    attention: str = "sdpa"  # sdpa | flash_attention_2 | eager
    device: str = "cuda"
    chunked_ce: bool = False  # chunked cross-entropy, or torch.compile fusing the loss
    # Older bitsandbytes releases (2023) saved each 4-bit matmul's input for backward; current ones do not.
    quant_saves_input: bool = False
    # A loader that stages a whole checkpoint shard on the GPU before quantizing (bytes); HF loads per tensor.
    load_staging_bytes: int = 0
    # torchtune's optimizer-in-backward steps each parameter as its gradient arrives: one gradient at a time.
    optimizer_in_backward: bool = False
    # peft's prepare_model_for_kbit_training upcasts non-quantized parameters to fp32 (QLoRA on GPU only);
    # ftwiz's own training does not (core/train/model_setup.py), so plans leave it off.
    kbit_upcast: bool = False
    loss_chain: str = "transformers"  # transformers | transformers-shift-copy | simple (see the docstring)
    # Training stage (recipe ``stage``): dpo/orpo run chosen and rejected answers in one forward pass (twice the
    # tokens per example); dpo/kto with full fine-tuning keep a frozen reference copy of the weights (LoRA's
    # reference is the adapter-disabled base: no copy). Reference and KL passes run without gradients, before
    # the policy's forward, so their transient logits never coexist with the saved activations.
    stage: str = "sft"  # sft | pt | dpo | orpo | kto
    # Training engine (see the docstring): the plain transformers Trainer (ftwiz) or DeepSpeed ZeRO-2.
    engine: str = "trainer"  # trainer | deepspeed-zero2
    # Packing (recipe ``packing``): ftwiz's PackedCollator flattens a micro-batch into one row of
    # micro_batch x seq_len tokens, samples kept apart by a block-diagonal mask that transformers builds over
    # the whole row: masks and eager scores grow with the row, not the sample.
    packed: bool = False
    # transformers hands SDPA a 4-D bool mask (padded batches, as ftwiz's collator pads to the longest sample
    # and a multiple of 8; packed rows): PyTorch's sdpa converts it to a new 16-bit additive mask in every
    # layer (aten ``convert_boolean_attn_mask``: at::where) that the fused kernel saves for backward.
    # Off for stacks that call SDPA with is_causal and no mask (torchtune, litgpt: the bench rows).
    sdpa_mask: bool = False
    zero_bucket_elements: int = 200_000_000  # DeepSpeed reduce_bucket_size (two buffers with overlap_comm)

    extra: dict = field(default_factory=dict)


def target_modules(spec: ModelSpec, targets: tuple[str, ...]) -> list[str]:
    """The LoRA-adapted nn.Linear modules by their real names (``spec.module_shapes``); a canonical name such
    as q_proj on a model that fuses it (phi3's qkv_proj) stands for the module holding it."""
    names = spec.module_names()
    if not targets or "all" in targets or "all-linear" in targets:
        return list(names)
    return [name for name, pieces in names.items() if name in targets or any(p in targets for p in pieces)]


def lora_params(spec: ModelSpec, rank: int, targets: tuple[str, ...]) -> int:
    """rank x (in + out) per adapted linear: the language model's, an image-text model's vision tower linears
    and linears outside the blocks (OPT's project_in/out) whose names the targets match (peft matches by name
    suffix; all-linear takes every one but lm_head)."""
    shapes = spec.module_shapes()
    text = spec.num_layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in target_modules(spec, targets))
    every = not targets or "all" in targets or "all-linear" in targets
    tower = spec.tower_layers * sum(rank * (a + b) for name, (a, b) in spec.tower_linear_shapes.items()
                                    if every or name in targets)
    outer = sum(rank * (a + b) for name, (a, b) in spec.outer_linear_shapes.items() if every or name in targets)
    return text + tower + outer


def _activation_bytes_per_token_layer(spec: ModelSpec, s: TrainSetup) -> float:
    h, i, q, kv = spec.hidden_size, spec.intermediate_size, spec.q_out, spec.kv_out
    half = 2 if s.dtype != "fp32" and s.device != "cpu" else 4
    # RMSNorm saves its fp32-upcast input and its output; LayerNorm its input and output at 16 bits.
    norms = spec.norms_per_block * ((4 * h + half * h) if spec.rms_norm else 2 * half * h)
    attention = half * 4 * (q + kv)
    if attention_kind(spec, s) == "eager":
        # per score: softmax's fp32 output and the probabilities in the compute dtype (one tensor in fp32),
        # and tanh's output where the scores are soft-capped (Gemma 2); transformers' eager_attention_forward
        attention += spec.num_heads * _mask_row(s) * (4 + (half if half != 4 else 0) + (half if spec.attn_softcap else 0))
    elif attention_kind(spec, s) == "sdpa" and s.sdpa_mask:  # the layer's own 16-bit copy of its query's mask row
        attention += _mask_row(s) * half
    mlp = (3 if spec.gated_mlp else 2) * half * i
    if spec.num_experts:  # each token's routed experts: input copy, gate/up, activation, output; fp32 router
        expert_i = spec.expert_intermediate_size
        mlp += spec.experts_per_token * half * ((3 if spec.gated_mlp else 2) * expert_i + 2 * h)
        mlp += spec.num_experts * 4 * 2
    extra = 0
    if s.method in ("lora", "qlora"):
        shapes = spec.module_shapes()
        extra = sum(half * shapes[t][0] for t in target_modules(spec, s.lora_targets))
    elif s.method == "full":
        extra = half * (q + i)  # o_proj and down_proj inputs, kept for their weight gradients
    if s.method == "qlora" and s.quant_saves_input:
        extra += half * (2 * h + q + i)  # attention input, o_proj input, MLP input, down_proj input
    return norms + attention + mlp + extra


def _mask_row(s: TrainSetup) -> int:
    """Keys each query token is scored against: its sequence, or under packing the whole flattened row."""
    return s.seq_len * (s.micro_batch if s.packed else 1)


def attention_kind(spec: ModelSpec, s: TrainSetup) -> str:
    """The attention that runs: SDPA asked of a model transformers cannot run with it falls back to eager."""
    return "eager" if s.attention == "sdpa" and not spec.sdpa else s.attention


def loss_chain_bytes(chain: str, wbytes: int) -> int:
    """Peak bytes per logit element of the loss (see the module docstring); ``wbytes`` is the logits' dtype."""
    upcast = 0 if wbytes == 4 else 4  # .float() of fp32 logits returns the same tensor
    if chain == "simple":
        return wbytes + 4 + 4
    forward = wbytes + upcast + 4 + (4 if chain == "transformers-shift-copy" else 0)
    return max(forward, 4 + 4 + 4)


def stage_note(stage: str, method: str) -> str | None:
    """What the training stage adds to memory, in words (None for sft/pt)."""
    if stage not in PAIRWISE_STAGES + REFERENCE_STAGES:
        return None
    parts = []
    if stage in PAIRWISE_STAGES:
        parts.append("each example is two sequences (chosen and rejected answers) in one pass")
    if stage in REFERENCE_STAGES:
        parts.append("the reference model is a second frozen copy of the weights" if method == "full" else
                     "the reference is the base with the adapter switched off (no extra weights; one more "
                     "forward pass without gradients per step)")
    if stage == "orpo":
        parts.append("no reference model")
    return f"stage {stage}: " + "; ".join(parts)


def estimate_memory(spec: ModelSpec, s: TrainSetup) -> dict[str, int]:
    """Every part in bytes; ``sum(parts.values())`` is the peak a user must have free."""
    on_cpu = s.device == "cpu"
    wbytes = 4 if (s.dtype == "fp32" or on_cpu) else 2
    tokens = s.seq_len * s.micro_batch * (2 if s.stage in PAIRWISE_STAGES else 1)
    parts: dict[str, float] = {"cuda_context": 0 if on_cpu else CUDA_CONTEXT_BYTES}

    if s.method == "qlora":
        # position tables and biases (spec.extra_params) stay 16-bit too: Linear4bit quantizes the weight only
        dense = spec.embedding_params + spec.lm_head_params + spec.norm_params + spec.extra_params
        upcast = s.kbit_upcast and not on_cpu
        blocks = spec.block_linear_params if spec.quantizable else 0  # FalconLinear: left 16-bit (spec.py)
        quantized = blocks + spec.tower_linear_params
        parts["weights"] = quantized * (0.5 + NF4_CONSTANTS.get(s.quant, NF4_CONSTANTS["nf4"])) \
            + dense * (4 if upcast else wbytes) + (spec.expert_params + spec.block_linear_params - blocks) * wbytes \
            + (spec.tower_params - spec.tower_linear_params) * wbytes  # 3-D experts, biases, convolutions: 16-bit
        if upcast and wbytes == 2:  # autocast's 16-bit copy of the fp32 lm_head, saved for backward
            parts["autocast_copies"] = (spec.lm_head_params or spec.embedding_params) * 2
    else:
        parts["weights"] = spec.total_params * wbytes

    paged = s.optimizer.startswith("paged")
    eight_bit = "8bit" in s.optimizer
    if s.method == "full":
        trainable = spec.total_params
        parts["trainable_weights"] = 0  # the weights themselves are trained
        largest_tensor = max(spec.embedding_params, max(a * b for a, b in spec.linear_shapes().values()))
        parts["gradients"] = (largest_tensor if s.optimizer_in_backward else trainable) * wbytes
        states = trainable * (2 if eight_bit else 2 * wbytes)
    else:
        trainable = lora_params(spec, s.lora_rank, s.lora_targets)
        parts["trainable_weights"] = trainable * 4
        parts["gradients"] = trainable * 4
        states = trainable * (2 if eight_bit else 8)
    if s.engine == "deepspeed-zero2" and not on_cpu:
        parts["trainable_weights"] = trainable * (4 if s.method == "full" else wbytes + 4)  # (16-bit +) fp32 master
        parts["gradients"] = trainable * (wbytes + wbytes + 4)  # partition + flattened copy + fp32 copy at the step
        states = trainable * 8  # FusedAdam's fp32 moments on the fp32 partition
        parts["zero_buckets"] = 2 * s.zero_bucket_elements * wbytes  # ipg_buffer, doubled by overlap_comm
    parts["optimizer_states"] = 0 if paged and not on_cpu else states
    parts["optimizer_states_paged"] = states if paged and not on_cpu else 0

    per_layer = _activation_bytes_per_token_layer(spec, s)
    # Under peft's k-bit preparation the embedding output is fp32, and so is the residual stream it starts.
    residual_fp32 = s.method == "qlora" and s.kbit_upcast and not on_cpu
    hidden_bytes = spec.hidden_size * (4 if residual_fp32 else wbytes)
    if s.grad_ckpt:
        parts["activations"] = tokens * (spec.num_layers * hidden_bytes + per_layer)
    else:
        parts["activations"] = tokens * spec.num_layers * per_layer
    if (s.packed or s.sdpa_mask) and attention_kind(spec, s) != "flash_attention_2":  # the bool mask itself
        parts["activations"] += tokens * _mask_row(s)
    logit_bytes = (wbytes + 1) if s.chunked_ce else loss_chain_bytes(s.loss_chain, wbytes)
    if spec.final_logit_softcap:  # tanh's output over the logits stays saved while the loss chain runs
        logit_bytes += wbytes
    parts["logits"] = tokens * spec.vocab_size * logit_bytes

    largest = max(a * b for a, b in spec.linear_shapes().values())
    temp = tokens * (spec.intermediate_size + spec.experts_per_token * spec.expert_intermediate_size) * wbytes * 2
    if s.method == "qlora":
        temp += largest * wbytes * 2
    parts["temporary_buffers"] = temp
    if s.stage in REFERENCE_STAGES and s.method == "full":
        parts["reference_weights"] = spec.total_params * wbytes
    transient = sum(v for k, v in parts.items()
                    if k not in ("cuda_context", "optimizer_states_paged", "weights", "autocast_copies",
                                 "reference_weights"))
    parts["fragmentation"] = 0 if on_cpu else transient * FRAGMENTATION_TRANSIENT
    if s.load_staging_bytes:
        parts["load_staging"] = s.load_staging_bytes + (0 if on_cpu else CUDA_CONTEXT_BYTES)
    return {k: int(v) for k, v in parts.items()}


def peak_bytes(parts: dict[str, int]) -> int:
    """Training peak, or the load-time peak when a loader stages more than training ever holds."""
    training = sum(v for k, v in parts.items() if k not in ("optimizer_states_paged", "load_staging"))
    return max(training, parts.get("load_staging", 0))


def torch_counted(parts: dict[str, int], metric: str) -> int:
    """What torch's own counters would show: no CUDA context; 'allocated' also excludes fragmentation."""
    skip = {"cuda_context", "optimizer_states_paged", "load_staging"} | (
        {"fragmentation"} if metric == "allocated" else set())
    training = sum(v for k, v in parts.items() if k not in skip)
    staging = parts.get("load_staging", 0) - (parts.get("cuda_context", 0) if "load_staging" in parts else 0)
    return max(training, staging)
