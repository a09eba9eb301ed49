"""``template: chatml`` on a Llama base whose vocabulary has no ``<|im_end|>`` token: a tiny random Llama
(hidden 32) carrying TinyLlama's real tokenizer and the named chatml template, saved as a model folder.

Training with it ends every answer with the TEXT ``<|im_end|>`` (seven ordinary pieces), never with EOS.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from real_tokenizers import require_shared


def chatml_on_tinyllama_folder(folder: Path, template: str | None = "chatml") -> tuple[Any, Any]:
    """Fill ``folder`` (tokenizer files, chat template, safetensors, generation_config.json); return
    (the HF tokenizer, the model). Skips the test when ../shared is absent.

    ``template=None`` keeps TinyLlama's own files untouched (its zephyr template, its tokenizer.json as the
    hub has it): the folder a user downloads."""
    import torch
    import transformers
    from ftwiz.core.chat_templates import NAMED_TEMPLATES, write_template_files

    for item in (require_shared() / "TinyLlama-1.1B-Chat-v1.0").iterdir():
        shutil.copy(item, folder / item.name)
    if template is not None:
        write_template_files(folder, NAMED_TEMPLATES[template])
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    config = transformers.LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                                      bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    return tok, model
