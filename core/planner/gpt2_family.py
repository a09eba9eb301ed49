"""GPT-2-style architectures: GPT-2, OPT, MPT, BLOOM, GPT-J and CodeGen, counted as transformers builds them.

Their blocks are attention + a two-matrix MLP with LayerNorm, like gpt_neox, but they differ in what the
llama-shaped count of ``spec.py`` leaves out, each read from transformers' modeling code (and checked
against the model built on the meta device, ``tests/unit/test_planner_gpt2_family.py``):
- learned position tables: GPT-2 ``wpe`` (n_positions x h), OPT ``embed_positions`` (max_position_embeddings
  + 2 rows: OPTLearnedPositionalEmbedding's offset); MPT and BLOOM use ALiBi, GPT-J and CodeGen rotary: none;
- biases on every linear (GPT-2, OPT with enable_bias, BLOOM; none in MPT) or on the MLP only
  (GPT-J, CodeGen), and an lm_head bias (GPT-J, CodeGen: untied by their config class's default);
- one LayerNorm per parallel block (GPT-J, CodeGen), LayerNorms without bias (MPT), BLOOM's
  LayerNorm after the embeddings, OPT's word_embed_proj_dim (embeddings narrower than the blocks, with
  project_in/project_out) and its missing final LayerNorm when do_layer_norm_before is false (opt-350m).
GPT-2's Conv1D layers are adapted by peft's all-linear and quantized by bitsandbytes like nn.Linear.
"""

from __future__ import annotations

from typing import Any

_QKV = ("q_proj", "k_proj", "v_proj")
# nn.Linear (GPT-2: Conv1D) module names -> the canonical projections each holds. GPT-2 names both its
# attention output and its MLP output c_proj: peft matches by suffix, so 'c_proj' adapts both.
MODULE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "gpt2": {"c_attn": _QKV, "attn.c_proj": ("o_proj",), "c_fc": ("fc1",), "mlp.c_proj": ("fc2",)},
    "opt": {"q_proj": ("q_proj",), "k_proj": ("k_proj",), "v_proj": ("v_proj",), "out_proj": ("o_proj",),
            "fc1": ("fc1",), "fc2": ("fc2",)},
    "mpt": {"Wqkv": _QKV, "out_proj": ("o_proj",), "up_proj": ("fc1",), "down_proj": ("fc2",)},
    "bloom": {"query_key_value": _QKV, "dense": ("o_proj",), "dense_h_to_4h": ("fc1",), "dense_4h_to_h": ("fc2",)},
    "gptj": {"q_proj": ("q_proj",), "k_proj": ("k_proj",), "v_proj": ("v_proj",), "out_proj": ("o_proj",),
             "fc_in": ("fc1",), "fc_out": ("fc2",)},
    "codegen": {"qkv_proj": _QKV, "out_proj": ("o_proj",), "fc_in": ("fc1",), "fc_out": ("fc2",)},
}
FAMILY = frozenset(MODULE_NAMES)
PARALLEL_BLOCK = {"gptj", "codegen"}  # attention and MLP read one LayerNorm's output (ln_1 only)


def intermediate_size(cfg: dict[str, Any], model_type: str, hidden: int) -> int:
    """The MLP's inner width: OPT ffn_dim; MPT and BLOOM 4h (transformers' MptMLP is 4 x d_model whatever
    expansion_ratio says); the others n_inner or 4h."""
    if model_type == "opt":
        return int(cfg.get("ffn_dim") or 4 * hidden)
    if model_type in ("mpt", "bloom"):
        return 4 * hidden
    return int(cfg.get("n_inner") or 4 * hidden)


def family_fields(cfg: dict[str, Any], model_type: str, hidden: int, layers: int, intermediate: int) -> dict[str, Any]:
    """ModelSpec fields for a GPT-2-family ``model_type`` (empty for any other): parameters outside the
    block linears' weights, norms and embeddings (``extra_params``), and how the norms and embeddings differ."""
    if model_type not in FAMILY:
        return {}
    vocab = int(cfg.get("vocab_size") or 0)
    # transformers' MPT has no bias anywhere, whatever no_bias says (bias=False; its LayerNorms' bias = None)
    all_biases = {"gpt2": True, "bloom": True, "opt": cfg.get("enable_bias", True)}.get(model_type, False)
    mlp_biases = all_biases or model_type in PARALLEL_BLOCK
    # biases: q/k/v (3h) + attention output (h) where every linear has one; fc1 (i) + fc2 (h)
    per_layer = (4 * hidden if all_biases else 0) + (intermediate + hidden if mlp_biases else 0)
    extra = layers * per_layer
    fields: dict[str, Any] = {}  # q/k/v biases are in extra_params: spec.py leaves qkv_bias off for the family
    if model_type == "gpt2":
        extra += int(cfg.get("max_position_embeddings") or cfg.get("n_positions") or 1024) * hidden
    elif model_type == "opt":
        extra += (int(cfg.get("max_position_embeddings") or 2048) + 2) * hidden
        embed = int(cfg.get("word_embed_proj_dim") or hidden)
        if embed != hidden:  # project_in and project_out, no bias; nn.Linear, so all-linear adapts them
            extra += 2 * embed * hidden
            fields["outer_linear_shapes"] = {"project_in": (embed, hidden), "project_out": (hidden, embed)}
        fields["embed_dim"] = embed
        fields["final_norm"] = bool(cfg.get("do_layer_norm_before", True)) and not cfg.get("_remove_final_layer_norm")
    elif model_type == "mpt":
        fields["norm_bias"] = False
    elif model_type == "bloom":
        extra += 2 * hidden  # word_embeddings_layernorm
    if model_type in PARALLEL_BLOCK and not cfg.get("tie_word_embeddings"):
        extra += vocab  # lm_head bias
    fields["extra_params"] = extra
    return fields
