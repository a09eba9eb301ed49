"""A model saved twice into one folder, once sharded and once not: save_pretrained removes old shards but keeps an
old model.safetensors.index.json, and keeps an old model.safetensors beside new shards.

- Stale index (its shards gone): transformers loads model.safetensors; the export refused, saying a shard is
  missing and to re-save the model (which is how the folder came to be). It now exports model.safetensors.
  Oracle: transformers' logits against llama.cpp's on the F32 GGUF.
- model.safetensors beside every shard of a newer index: transformers loads model.safetensors, llama.cpp's
  converter the shards. The export took the shards without a word (its --verify then failed against
  transformers, with no reason given); it now refuses, naming both sets and the stale one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bad_input_cli import ftwiz, refused

IDS = [3, 50, 77, 120, 9, 200]


def _model_saved_twice(base: Path, folder: Path, first_shard: str, then_shard: str):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model.save_pretrained(folder, max_shard_size=first_shard)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(-1)  # the fine-tune saved second
    model.save_pretrained(folder, max_shard_size=then_shard)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (base / name).is_file():
            (folder / name).write_bytes((base / name).read_bytes())
    return model


def test_stale_index_of_removed_shards_exports_model_safetensors(tiny_llama: Path, tmp_path: Path) -> None:
    import llama_cpp
    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "model"
    _model_saved_twice(tiny_llama, folder, "200KB", "5GB")
    assert (folder / "model.safetensors.index.json").is_file() and not list(folder.glob("model-0*"))
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        expected = hf(input_ids=torch.tensor([IDS])).logits[0].numpy()
    result = ftwiz("export", str(folder), "--quant", "F32", "--out", str(tmp_path / "m.gguf"))
    assert result.returncode == 0, result.stderr
    llm = llama_cpp.Llama(model_path=str(tmp_path / "m.gguf"), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    try:
        llm.eval(IDS)
        got = np.array(llm.scores[: len(IDS)])
    finally:
        llm.close()
    assert np.max(np.abs(got - expected)) / float(expected.max() - expected.min()) < 1e-3


def test_model_safetensors_beside_a_full_set_of_shards_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    _model_saved_twice(tiny_llama, folder, "5GB", "200KB")
    assert (folder / "model.safetensors").is_file() and list(folder.glob("model-0*"))
    err = refused(ftwiz("export", str(folder), "--quant", "F16", "--out", str(tmp_path / "m.gguf")))
    assert "two sets of weights: model.safetensors" in err and "model.safetensors.index.json" in err, err
    assert "delete the stale set (model.safetensors, the older one)" in err, err
    assert not (tmp_path / "m.gguf").exists()


def test_index_of_model_safetensors_alone_is_one_set(tiny_llama: Path, tmp_path: Path) -> None:
    """An index listing model.safetensors itself (ftwiz merge writes one when the base had an index) is one set
    of weights: the merge of a base with a stale index, then the export of the merged folder."""
    import json

    folder = tmp_path / "model"
    _model_saved_twice(tiny_llama, folder, "200KB", "5GB")  # model.safetensors and a stale index
    refs = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    index = {"metadata": {}, "weight_map": {name: "model.safetensors" for name in refs}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    result = ftwiz("export", str(folder), "--quant", "F16", "--out", str(tmp_path / "m.gguf"))
    assert result.returncode == 0, result.stderr
