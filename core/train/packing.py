"""Packing that keeps samples apart: padding-free batches with per-sample ``position_ids``.

``pack`` (``ftwiz.core.data.tokenize``) puts several samples into one row of at most ``cutoff_len`` tokens,
with ``position_ids`` that restart at 0 at each sample. Here a micro-batch of such rows becomes one
flattened row ``[1, total_tokens]`` with no ``attention_mask`` (TRL's padding-free
``DataCollatorForLanguageModeling``), which is what the attention code needs to isolate samples:
- SDPA / eager / flex: transformers' ``masking_utils.find_packed_sequence_indices`` turns restarting
  ``position_ids`` into a block-diagonal causal mask when no 2-D attention mask is given;
- FlashAttention-2/3: the collator's ``cu_seq_lens_*`` drive the varlen kernel.
The first token of every sample gets label -100, so no sample learns to predict the next one's start.

Whether a model honours this (models whose attention ignores ``position_ids``, or recurrent layers that
carry state across the row, do not) is measured, not assumed: :func:`check_isolation` packs the same sample
behind two different ones and refuses ``packing`` when its logits differ.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.errors import FtwizError

# A sample's logits may differ by rounding only; a leak moves them by tens of percent (0.36 of 1.14 on the
# tiny Qwen2), so the bound sits far from both.
TOLERANCE = {"fp32": 1e-4, "16bit": 2e-2}


def seq_lengths(position_ids: list[int]) -> list[int]:
    """Lengths of the samples in one packed row, read from where ``position_ids`` restart at 0.

    ``[0, 1, 2, 0, 1]`` -> ``[3, 2]``. A row that does not start at 0 is treated as one sample.
    """
    starts = [i for i, p in enumerate(position_ids) if p == 0] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    return [end - start for start, end in zip(starts, starts[1:] + [len(position_ids)], strict=True)]


class PackedCollator:
    """Flatten a micro-batch of packed rows into one padding-free row (any micro-batch size).

    Input rows: ``input_ids``, ``labels`` and ``position_ids`` (lists of equal length). Output: TRL's
    padding-free batch -- ``input_ids``/``labels``/``position_ids`` of shape ``[1, total]`` plus
    ``cu_seq_lens_q/k``, ``max_length_q/k`` and ``seq_idx`` -- and no ``attention_mask``.
    """

    def __init__(self, pad_token_id: int) -> None:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self._flatten = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [{"input_ids": f["input_ids"], "labels": f["labels"],
                 "seq_lengths": seq_lengths(f["position_ids"]) if "position_ids" in f else [len(f["input_ids"])]}
                for f in features]
        return self._flatten(rows)


def check_isolation(model, *, dtype: str = "fp32") -> float:
    """Measure that a packed sample does not see the samples before it; return the largest logit change.

    Packs sample B behind two different samples A and A' and compares B's logits, through the model as it
    will train (adapter, attention implementation, device). Costs two forward passes of ~40 tokens.

    Raises:
        FtwizError: naming the recipe key ``packing`` when B's logits depend on what precedes it.
    """
    import torch

    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if vocab < 64:
        raise FtwizError("packing: cannot check that samples stay apart: the model reports no vocabulary size",
                         where="recipe: packing", fix="set packing: false")
    device = next(model.parameters()).device
    span = min(vocab, 4096)

    def ids(start: int, n: int):
        return (torch.arange(start, start + n) * 7919 % span).to(device)

    first, other, sample = ids(3, 20), ids(1000, 20), ids(2000, 16)
    positions = torch.cat([torch.arange(20), torch.arange(16)]).to(device)[None]
    was_training = model.training
    model.eval()  # dropout off: the two passes must differ only in what precedes the sample
    try:
        with torch.no_grad():
            logits = [model(input_ids=torch.cat([head, sample])[None], position_ids=positions,
                            use_cache=False).logits[0, 20:].float() for head in (first, other)]
    except Exception as exc:  # a model whose forward rejects position_ids cannot be packed
        raise FtwizError(f"packing: this model cannot run packed sequences ({type(exc).__name__}: {exc})",
                         where="recipe: packing", fix="set packing: false") from None
    finally:
        if was_training:
            model.train()
    change = float((logits[0] - logits[1]).abs().max())
    scale = float(logits[0].abs().max()) + 1e-6
    if change > TOLERANCE["fp32" if dtype == "fp32" else "16bit"] * scale:
        attention = getattr(config, "_attn_implementation", None) or "default"
        raise FtwizError(
            f"packing: samples packed together would see each other with this model "
            f"({getattr(config, 'model_type', '?')}, attention '{attention}'): a sample's logits changed by "
            f"{change:.3g} (of {scale:.3g}) when a different sample was packed before it",
            where="recipe: packing",
            fix="set packing: false (padding keeps samples apart); packing needs attention that honours "
                "position_ids (sdpa, eager or flash_attention_2 in current transformers)")
    return change
