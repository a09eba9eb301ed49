"""A run trained without BOS is exported, verified and served without BOS (issue 15: served as trained).

``template: alpaca`` on a Llama tokenizer that adds BOS: training renders alpaca's text (no BOS) and
tokenizes it without special tokens, so the GGUF must not ask the runtime for a BOS, and ``export
--verify`` must compare token ids the way the GGUF will be served.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = [{"messages": [{"role": "user", "content": f"What is {a} plus 1?"},
                      {"role": "assistant", "content": f"It is {a + 1}."}]} for a in range(12)]


@pytest.mark.slow
def test_alpaca_on_a_bos_adding_llama_tokenizer_exports_without_runtime_bos(tiny_llama: Path, tmp_path: Path) -> None:
    from ftwiz.core.data.template import render_with_spans, tokenize_with_labels
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.gguf_info import read_gguf_info
    from ftwiz.core.recipe import parse_recipe
    from ftwiz.core.train.runner import train
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    assert tok("x")["input_ids"][0] == tok.bos_token_id  # the tokenizer itself would add BOS
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in DATA), encoding="utf-8")
    recipe = parse_recipe({"model_name_or_path": str(tiny_llama), "dataset": [str(data)], "finetuning_type": "lora",
                           "template": "alpaca", "max_steps": 1, "cutoff_len": 256, "lora_rank": 4,
                           "per_device_train_batch_size": 2, "val_size": 0.0, "test_size": 0.0,
                           "near_dedup_threshold": None, "run_name": "alpaca-bos", "export_quant": ["Q8_0"]})
    result = train(recipe)
    assert result.status == "completed"
    exported = export_model(result.run_dir, ["Q8_0"], verify=True)
    report = exported.reports[0]
    assert report.passed, [(c.name, c.detail) for c in report.checks]
    info = read_gguf_info(exported.gguf_paths[0])
    assert info.add_bos is False

    import llama_cpp
    from ftwiz.core.deploy.chat import chat_formatter

    adapter_tok = AutoTokenizer.from_pretrained(Path(result.run_dir) / "adapter")
    messages = DATA[0]["messages"]
    text, spans = render_with_spans(adapter_tok, adapter_tok.chat_template, messages)
    trained = tokenize_with_labels(adapter_tok, [text], [spans])["input_ids"][0]
    prompt = chat_formatter(info)[0](messages=messages[:1]).prompt
    llm = llama_cpp.Llama(model_path=exported.gguf_paths[0], vocab_only=True, verbose=False)
    served = llm.tokenize(prompt.encode("utf-8"), add_bos=info.add_bos, special=True)
    llm.close()
    assert trained[:len(served)] == served and served[0] != tok.bos_token_id
