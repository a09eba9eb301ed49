"""Do the weights have the shapes config.json promises? Checked before an export writes anything.

llama.cpp sizes every tensor from the GGUF's hyper-parameters (written from config.json) and refuses to load
a file whose tensors disagree ("wrong shape" / "Failed to load model"), long after the export reported
success. A config.json edited by hand, or copied from a sibling model (a 7B config beside 3B weights), is
the usual cause; the check names the field and the tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

# Source tensors that hold two or three projections at once (Phi-3's gate_up_proj and qkv_proj): their rows
# are a multiple of one projection's, so they are left to the loader.
FUSED = ("gate_up_proj.weight", "qkv_proj.weight")


def expected_shapes(params: Any) -> dict[str, tuple[tuple[int, int], tuple[str, str]]]:
    """GGUF tensor name (block 0 for per-layer ones) -> (numpy shape, the config.json field(s) behind each
    dimension).

    Only tensors whose layout is the same in every supported architecture: the embedding, and the q/k and
    MLP up projections where they are separate (see ``FUSED``)."""
    head, hidden = params.head_dim, params.hidden_size
    return {
        "token_embd.weight": ((params.vocab_size, hidden), ("vocab_size", "hidden_size")),
        "blk.0.attn_q.weight": ((params.num_heads * head, hidden), ("num_attention_heads x head_dim", "hidden_size")),
        "blk.0.attn_k.weight": ((params.num_kv_heads * head, hidden), ("num_key_value_heads x head_dim",
                                                                        "hidden_size")),
        "blk.0.ffn_up.weight": ((params.intermediate_size, hidden), ("intermediate_size", "hidden_size")),
    }


def check_shapes(plans: list[Any], params: Any, model_dir: Path) -> None:
    """FtwizError naming the config.json field(s) a planned tensor's shape disagrees with."""
    wanted = expected_shapes(params)
    for plan in plans:
        if plan.name not in wanted or plan.ref is None or plan.ref.name.endswith(FUSED):
            continue
        shape, fields = wanted[plan.name]
        found = tuple(plan.ref.shape)
        if found != shape:
            wrong = [f"{name} = {want}" for name, want, got in zip(fields, shape, found + (0, 0), strict=False)
                     if want != got] or [f"{' and '.join(fields)}"]
            raise FtwizError(
                f"tensor {plan.ref.name} is {list(found)}, but config.json says {', '.join(wrong)} "
                f"(so {list(shape)}): llama.cpp would refuse to load the GGUF",
                where=Location(file=Path(model_dir) / "config.json", field=wrong[0].split(" ")[0]),
                fix="config.json does not belong to these weights; restore the model's own config.json")
