"""config.json dialects the converter must read right or refuse: image-text configs saved as a diff,
soft-capping llama.cpp cannot honour, missing keys. Config-only: no weights are written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError


def test_gemma3_image_text_config_saved_as_a_diff_is_completed(tmp_path: Path) -> None:
    """google/gemma-3-4b-it's config.json (transformers 4.50) keeps only the text keys that differ from the
    defaults: no vocab_size, head_dim or rope_theta. ftwiz fills them from transformers' Gemma3TextConfig
    rather than guessing hidden/heads (320, not 256) or a rope base of 10000 (not 1e6)."""
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "torch_dtype": "bfloat16",
        "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                        "num_attention_heads": 8, "num_hidden_layers": 34, "num_key_value_heads": 4,
                        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}))
    params = model_params(tmp_path)
    assert (params.info.gguf_arch, params.vocab_size, params.head_dim) == ("gemma3", 262208, 256)
    assert (params.rope_theta, params.rope_theta_swa, params.context_length) == (1e6, 10000.0, 131072)
    assert params.rope_scaling["rope_type"] == "linear" and params.rope_scaling["factor"] == 8.0
    assert params.tied and params.sliding_window == 1024


@pytest.mark.parametrize(("arch", "settings", "field"), [
    ("Gemma2ForCausalLM", {"attn_logit_softcapping": None}, "attn_logit_softcapping"),
    ("Gemma2ForCausalLM", {"final_logit_softcapping": None}, "final_logit_softcapping"),
    ("Gemma3ForCausalLM", {"attn_logit_softcapping": 50.0}, "attn_logit_softcapping"),
])
def test_gemma_soft_capping_llama_cpp_cannot_honour_is_refused(tmp_path: Path, arch: str, settings: dict,
                                                               field: str) -> None:
    """llama.cpp always soft-caps Gemma 2 and never Gemma 3; a fine-tune that changed that would export
    fine and answer differently (the logits move by 2-6% of their range), so it is refused up front."""
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": [arch], "hidden_size": 64, "num_attention_heads": 4, "head_dim": 16,
        "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 400, **settings}))
    with pytest.raises(FtwizError, match="soft-cap") as err:
        model_params(tmp_path)
    assert err.value.where.field == field


def test_missing_required_config_key_names_it(tmp_path: Path) -> None:
    from ftwiz.core.export.arch import model_params

    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128}))
    with pytest.raises(FtwizError, match="no vocab_size") as err:
        model_params(tmp_path)
    assert err.value.where.field == "vocab_size"
