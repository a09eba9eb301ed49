"""A checkpoint whose config ties the embeddings but whose safetensors say otherwise is served as transformers
loads it (core/export/tied_head.py): a head saved apart with other values stays the output matrix, and a head
saved alone becomes the embeddings too. Oracle: transformers' logits against llama.cpp's on the F32 GGUF.

Before, the first lost its head without a word (llama.cpp computed logits with the embeddings), and the second
wrote a GGUF without token_embd.weight that llama.cpp refused to load.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

IDS = [3, 50, 77, 120, 9, 200]


def _gguf_logits(folder: Path, out: Path) -> np.ndarray:
    import llama_cpp
    from ftwiz.core.cli import main

    assert main(["export", str(folder), "--quant", "F32", "--out", str(out)]) == 0
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    try:
        llm.eval(IDS)
        return np.array(llm.scores[: len(IDS)])
    finally:
        llm.close()


def _hf_logits(folder: Path) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        return model(input_ids=torch.tensor([IDS])).logits[0].numpy()


@pytest.mark.parametrize("case", ["head-differs", "head-only"])
def test_tied_config_follows_the_tensors_saved(tiny_qwen2: Path, tmp_path: Path, case: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny_qwen2, tmp_path / "model")
    weights = load_file(folder / "model.safetensors")
    embed = weights["model.embed_tokens.weight"]
    if case == "head-differs":
        weights["lm_head.weight"] = embed + 0.05 * torch.randn(embed.shape, generator=torch.Generator().manual_seed(0))
    else:
        weights["lm_head.weight"] = weights.pop("model.embed_tokens.weight")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    expected = _hf_logits(folder)
    got = _gguf_logits(folder, tmp_path / "m.gguf")
    span = float(expected.max() - expected.min())
    assert np.max(np.abs(got - expected)) / span < 1e-3
