"""A checkpoint saved without its language-model head (``AutoModel`` / ``model.model.save_pretrained``: tensors
named embed_tokens.weight, layers.0..., no lm_head.weight), given the base's config.json (ftwiz refuses the
'LlamaModel' architecture such a save writes, and copying the base's config is the obvious next step).
transformers loads it with a freshly initialised head, so no GGUF of it can answer like the trained model.
``export --check`` (what train and plan ask before hours of training) said "exportable"; the export then
failed saying to set tie_word_embeddings, which would have written the embeddings as the head without a word.
Both now name the missing head and the fix.
"""

from __future__ import annotations

from pathlib import Path

from bad_input_cli import ftwiz, one_line


def test_checkpoint_without_head_is_not_exportable(tiny_llama: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    folder = tmp_path / "body"
    AutoModel.from_pretrained(tiny_llama, dtype=torch.float32).save_pretrained(folder)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_llama / name).read_bytes())
    _, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert "lm_head.weight" in info["missing_keys"]  # the oracle: transformers has no trained head either

    check = ftwiz("export", str(folder), "--check")
    assert check.returncode != 0 and "not exportable" in check.stdout + check.stderr, check.stdout + check.stderr
    said = one_line(check.stdout + check.stderr)
    assert "no lm_head.weight" in said and "AutoModelForCausalLM" in said, said
    export = ftwiz("export", str(folder), "--quant", "F16", "--out", str(tmp_path / "m.gguf"))
    assert export.returncode == 2 and "Traceback" not in export.stderr
    assert "without its language-model head" in one_line(export.stderr)
    assert not (tmp_path / "m.gguf").exists()
