"""Parameters an image-text checkpoint loads besides its language model: the vision encoder and projector.

``AutoModelForCausalLM`` on an image-text config (Gemma 3 4B and larger: ``model_type: gemma3``) builds the
whole ``...ForConditionalGeneration`` model, vision tower included, even when training sees only text: those
weights are in memory (google/gemma-3-4b-it: 417M of its 4.30B parameters). They are never run on text, so
they add weights, not activations. Counts follow transformers' modules (``SiglipVisionTransformer``,
``Gemma3MultiModalProjector``); a vision encoder of another type is not counted, and the spec says so.
"""

from __future__ import annotations

from typing import Any

# model_type of an image-text config -> the parameters of its projector, from the two hidden sizes
PROJECTORS = {
    # Gemma3MultiModalProjector: mm_input_projection_weight (vision x text) and mm_soft_emb_norm (RMSNorm)
    "gemma3": lambda vision_hidden, text_hidden: vision_hidden * text_hidden + vision_hidden,
}


def siglip_params(vision: dict[str, Any]) -> tuple[int, int]:
    """(all parameters, those in nn.Linear weights) of a SigLIP vision encoder config.

    Patch embedding (Conv2d with bias), learned position embeddings, per layer q/k/v/out projections and
    fc1/fc2 with biases and two LayerNorms, a post-LayerNorm, and the pooling head when ``vision_use_head``.
    Only the nn.Linear weights are stored in NF4 under QLoRA (biases, norms, convolutions stay 16-bit).
    """
    h = int(vision.get("hidden_size", 768))
    i = int(vision.get("intermediate_size", 3072))
    layers = int(vision.get("num_hidden_layers", 12))
    patch = int(vision.get("patch_size", 16))
    image = int(vision.get("image_size", 224))
    channels = int(vision.get("num_channels", 3))
    embeddings = channels * patch * patch * h + h + (image // patch) ** 2 * h
    linear_weights = 4 * h * h + 2 * h * i
    per_layer = linear_weights + 4 * h + i + h + 2 * 2 * h  # biases: q/k/v/out, fc1, fc2; two LayerNorms
    total = embeddings + layers * per_layer + 2 * h
    linears = layers * linear_weights
    if vision.get("vision_use_head", True):  # probe, MultiheadAttention (in/out proj), LayerNorm, MLP
        total += h + 3 * h * h + 3 * h + h * h + h + 2 * h + 2 * h * i + i + h
        linears += 2 * h * i  # fc1/fc2; MultiheadAttention's projections are not plain nn.Linear modules
    return total, linears


def siglip_layer_linears(vision: dict[str, Any]) -> tuple[int, dict[str, tuple[int, int]]]:
    """(encoder layers, (in, out) of each nn.Linear in one layer by name): what peft's all-linear -- and any
    target name that also ends a vision module's name, such as q_proj -- puts LoRA on too."""
    h, i = int(vision.get("hidden_size", 768)), int(vision.get("intermediate_size", 3072))
    square = (h, h)
    return int(vision.get("num_hidden_layers", 12)), {"q_proj": square, "k_proj": square, "v_proj": square,
                                                      "out_proj": square, "fc1": (h, i), "fc2": (i, h)}


def tower_params(config: dict[str, Any], text_hidden: int) -> dict[str, Any]:
    """``tower_params`` (parameters outside the language model whose hidden size is ``text_hidden``),
    ``tower_linear_params`` (the nn.Linear weights among them), ``tower_layers`` and ``tower_linear_shapes``
    (per encoder layer), and ``warning`` (None, or what is not counted)."""
    none = {"tower_params": 0, "tower_linear_params": 0, "tower_layers": 0, "tower_linear_shapes": {}}
    vision = config.get("vision_config")
    if not isinstance(vision, dict):
        return none | {"warning": None}
    outer = str(config.get("model_type"))
    kind = vision.get("model_type") or ("siglip_vision_model" if outer in PROJECTORS else None)
    if kind != "siglip_vision_model" or outer not in PROJECTORS:
        return none | {"warning": f"the vision encoder ({kind or 'unknown type'}) is not counted: the estimate "
                                  "covers the language model only, so leave a margin for the image tower's weights"}
    total, linears = siglip_params(vision)
    layers, shapes = siglip_layer_linears(vision)
    return {"tower_params": total + PROJECTORS[outer](int(vision.get("hidden_size", 768)), text_hidden),
            "tower_linear_params": linears, "tower_layers": layers, "tower_linear_shapes": shapes, "warning": None}
