"""Tiny models with a SentencePiece tokenizer, and random bodies of other architectures on top of it,
for the export parity tests (tests/unit/test_export_verify*.py). Importable because tests/ is on sys.path
(tests/conftest.py lives there).
"""

from __future__ import annotations

import json
from pathlib import Path


def sentencepiece_llama(out: Path) -> Path:
    """A Llama whose tokenizer is a SentencePiece model trained on the shipped corpus (byte fallback on)."""
    import sentencepiece as spm
    import transformers
    from ftwiz.core.tiny.tokenizer import corpus_text

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "sp"), vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    (out / "tokenizer.model").write_bytes((out / "sp.model").read_bytes())
    tokenizer = transformers.LlamaTokenizer.from_pretrained(out)
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}{{ '[' + m['role'] + '] ' + m['content'] + ' ' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '[assistant]' }}{% endif %}")
    tokenizer.save_pretrained(out)  # writes tokenizer.json; tokenizer.model stays beside it
    _llama2_style_tokenizer_json(out)
    for name in ("sp.model", "sp.vocab", "corpus.txt"):
        (out / name).unlink()
    import torch

    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                                      tie_word_embeddings=False, rms_norm_eps=1e-6)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0, 0.1)
    model.generation_config = transformers.GenerationConfig(bos_token_id=1, eos_token_id=2)
    model.save_pretrained(out)
    return out


def _llama2_style_tokenizer_json(out: Path) -> None:
    """Give tokenizer.json the pipeline Llama 2 / Mistral / TinyLlama publish (facts of those files): a
    normalizer that prepends '▁' to every text segment and replaces spaces, and a post-processor adding <s>.

    transformers 5 re-derives a different pipeline when it converts a bare tokenizer.model (no '▁' after
    special tokens), which llama.cpp cannot reproduce; loading the published layout through
    PreTrainedTokenizerFast keeps the file's behaviour, as users' Llama 2 checkpoints have it.
    """
    tj = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    tj["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    tj["pre_tokenizer"] = None
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    tj["post_processor"] = {"type": "TemplateProcessing", "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos,
                                     {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    (out / "tokenizer.json").write_text(json.dumps(tj), encoding="utf-8")
    cfg = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")


def save_random_body(out: Path, config, *, std: float = 0.05, vector_std: float | None = None) -> Path:
    """A randomly initialised model for ``config`` saved into ``out`` (replacing weights already there):
    matrices from N(0, std); with ``vector_std`` the 1-D weights too (Gemma's norms sit around 0)."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0, std)
            elif vector_std is not None:
                param.normal_(0, vector_std)
    for stale in out.glob("model*.safetensors"):
        stale.unlink()
    model.save_pretrained(out)
    return out


def phi3_config(vocab_size: int, **overrides):
    import transformers

    return transformers.Phi3Config(**{
        "vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False, **overrides})


def gemma3_image_text(out: Path) -> Path:
    """A tiny Gemma 3 image-text checkpoint (Gemma3ForConditionalGeneration: the language model under
    ``language_model.*`` plus a one-layer vision tower) on the SentencePiece tokenizer of
    :func:`sentencepiece_llama`, its three image tokens after the vocabulary."""
    import transformers

    sentencepiece_llama(out)
    n = len(transformers.AutoTokenizer.from_pretrained(out))
    text = dict(vocab_size=n + 3, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32, max_position_embeddings=512,
                sliding_window=64, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14)
    config = transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                                       boi_token_index=n, eoi_token_index=n + 1, image_token_index=n + 2)
    return save_random_body(out, config, vector_std=0.2)
