"""Tiny Llama / Qwen2 / Qwen3 / Gemma 2 / Gemma 3 models built locally, for tests and the embedded demo.

Sizes are chosen to exercise real code paths, not to be useful: grouped-query attention (fewer KV heads
than heads), tied embeddings (Qwen2), and a head_dim that differs from hidden/heads (Qwen3). Weights are
deterministic for a seed. ``init_std`` can be raised so that layout bugs in an exporter (say a missing
Q/K permutation) move logits far beyond any tolerance instead of hiding inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ftwiz.core.tiny.tokenizer import FAMILIES, ChatFamily, build_tokenizer

Arch = Literal["llama", "qwen2", "qwen3", "gemma2", "gemma3"]
DEFAULT_FAMILY: dict[str, ChatFamily] = {"llama": "llama3", "qwen2": "chatml", "qwen3": "chatml", "gemma2": "gemma",
                                         "gemma3": "gemma"}
TIED_BY_DEFAULT = ("qwen2", "gemma2", "gemma3")


@dataclass(frozen=True)
class TinySpec:
    arch: Arch = "qwen2"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int | None = None  # None: hidden_size // num_heads
    intermediate_size: int | None = None  # None: 2 x hidden (SwiGLU keeps it small)
    tie_word_embeddings: bool | None = None  # None: the architecture's usual (Qwen2 tied, others not)
    vocab_size: int = 512
    max_position_embeddings: int = 1024
    init_std: float = 0.02
    chat_family: ChatFamily | None = None
    seed: int = 0


def _config(spec: TinySpec, tokenizer):
    import transformers

    family = FAMILIES[spec.chat_family or DEFAULT_FAMILY[spec.arch]]
    tied = spec.tie_word_embeddings if spec.tie_word_embeddings is not None else spec.arch in TIED_BY_DEFAULT
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in family.end_of_turn]
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size or 2 * spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        rms_norm_eps=1e-6,
        initializer_range=spec.init_std,
        tie_word_embeddings=tied,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos_ids[0],
        pad_token_id=tokenizer.pad_token_id,
    )
    if spec.arch == "llama":
        return transformers.LlamaConfig(**common, rope_theta=500000.0,
                                        head_dim=spec.head_dim or spec.hidden_size // spec.num_heads)
    if spec.arch == "qwen2":
        if spec.head_dim not in (None, spec.hidden_size // spec.num_heads):
            raise ValueError("Qwen2 has no head_dim setting; use arch='qwen3' for head_dim != hidden/heads")
        return transformers.Qwen2Config(**common, rope_theta=1000000.0, use_sliding_window=False)
    if spec.arch == "qwen3":
        return transformers.Qwen3Config(**common, rope_theta=1000000.0,
                                        head_dim=spec.head_dim or 2 * spec.hidden_size // spec.num_heads)
    if spec.arch in ("gemma2", "gemma3"):  # local/global layers; attention scaled by 1/sqrt(head_dim)
        head_dim = spec.head_dim or 2 * spec.hidden_size // spec.num_heads
        gemma = dict(common, head_dim=head_dim, query_pre_attn_scalar=head_dim, sliding_window=512)
        if spec.arch == "gemma2":
            return transformers.Gemma2Config(**gemma, attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
        return transformers.Gemma3TextConfig(**gemma)
    raise ValueError(f"unknown tiny architecture {spec.arch!r}; choose llama, qwen2, qwen3, gemma2 or gemma3")


def build_tiny_model(out_dir: str | Path, spec: TinySpec | None = None, **overrides) -> Path:
    """Build tokenizer + randomly initialised model and save both in Hugging Face format to ``out_dir``.

    ``build_tiny_model(tmp, arch="qwen3", head_dim=32)`` is the usual call from tests.
    """
    import torch
    import transformers

    spec = TinySpec(**{**(spec.__dict__ if spec else {}), **overrides})
    family = spec.chat_family or DEFAULT_FAMILY[spec.arch]
    tokenizer = build_tokenizer(family, vocab_size=spec.vocab_size)
    config = _config(spec, tokenizer)
    torch.manual_seed(spec.seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if spec.init_std != 0.02:
        _reinit(model, spec.init_std, spec.seed, norm_center=0.0 if spec.arch.startswith("gemma") else 1.0)
    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in FAMILIES[family].end_of_turn]
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=end_ids, pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _reinit(model, std: float, seed: int, norm_center: float = 1.0) -> None:
    """Re-draw every linear/embedding weight from N(0, std): large weights expose layout bugs. Norm weights
    scatter around ``norm_center``: 1 for x * w norms, 0 for Gemma's x * (1 + w)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
            elif "norm" in name:
                param.copy_(norm_center + 0.1 * torch.randn(param.shape, generator=generator))
