"""vLLM: the merged folder loads and computes the fine-tune; the command is sized and carries the right flags."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import parse_recipe
from ftwiz.core.scale.vllm import export_for_vllm, vllm_command
from ftwiz.core.train.runner import train

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


@pytest.fixture(scope="module")
def lora_run(tiny_qwen2: Path, session_dirs: dict[str, Path]) -> Path:
    os.environ["FTWIZ_RUNS_DIR"] = str(session_dirs["runs"])
    recipe = parse_recipe({
        "model_name_or_path": str(tiny_qwen2), "dataset": [str(REPO / "recipes" / "demo" / "demo.jsonl")],
        "finetuning_type": "lora", "max_samples": 16, "cutoff_len": 64, "learning_rate": 5e-2, "max_steps": 3,
        "per_device_train_batch_size": 4, "lora_rank": 8, "save_steps": 100, "eval_steps": 100,
        "val_size": 0.0, "test_size": 0.0, "near_dedup_threshold": None, "run_name": "vllm-lora"})
    result = train(recipe)
    assert result.status == "completed"
    return result.run_dir


def test_merged_folder_loads_and_computes_the_fine_tune(lora_run: Path, tiny_qwen2: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = export_for_vllm(lora_run, tmp_path / "serve")
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen2),
                                          lora_run / "adapter").merge_and_unload()
    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Ahoy, how are ye?"}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        got, want, before = (m(ids).logits for m in (model, reference, base))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - before).abs().max() > 1e-3  # the fine-tune is in there, not just the base

    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(out).eos_token_id  # vLLM stops on each (--generation-config OUT)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])

    script = out / "vllm-serve.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    body = script.read_text(encoding="utf-8")
    assert 'exec vllm serve "$here"' in body and "--host 127.0.0.1" in body
    assert "vllm-lora" in (out / "README.md").read_text(encoding="utf-8")
    with pytest.raises(FtwizError, match="already exists"):
        export_for_vllm(lora_run, out)


def test_command_for_a_run_serves_base_plus_adapter(lora_run: Path, tiny_qwen2: Path) -> None:
    cmd = vllm_command(lora_run, port=8123)
    assert cmd[:3] == ["vllm", "serve", str(tiny_qwen2.resolve())]
    assert _flag(cmd, "--host") == "127.0.0.1" and _flag(cmd, "--port") == "8123"
    assert "--enable-lora" in cmd
    assert _flag(cmd, "--lora-modules") == f"vllm-lora-lora={(lora_run / 'adapter').resolve()}"
    assert _flag(cmd, "--max-lora-rank") == "8"
    config = json.loads((tiny_qwen2 / "config.json").read_text())
    assert _flag(cmd, "--max-model-len") == str(config["max_position_embeddings"])


def _big_model(tmp_path: Path) -> Path:
    """An 8B-Llama-shaped folder: real config numbers, a sparse 15 GiB weights file (no disk used)."""
    folder = tmp_path / "llama-8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "hidden_size": 4096, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}))
    with open(folder / "model.safetensors", "wb") as handle:
        handle.truncate(15 * GIB)
    return folder


def test_context_is_lowered_to_what_the_gpu_holds(tmp_path: Path) -> None:
    model = _big_model(tmp_path)
    cmd = vllm_command(model, gpu_memory_gb=24)
    # 0.9 * 24 GiB - 15 GiB weights - 1.5 GiB runtime = 5.1 GiB of KV cache at 128 KiB per token
    assert int(_flag(cmd, "--max-model-len")) == int((0.9 * 24 - 16.5) * GIB // (2 * 32 * 8 * 128 * 2))
    assert _flag(cmd, "--dtype") == "bfloat16" and _flag(cmd, "--gpu-memory-utilization") == "0.90"
    assert "--enable-lora" not in cmd
    assert _flag(vllm_command(model, gpu_memory_gb=80), "--max-model-len") == "131072"
    with pytest.raises(FtwizError, match="does not fit a 16 GB GPU"):
        vllm_command(model, gpu_memory_gb=16)


def test_cli_verb_prints_the_command(lora_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from ftwiz.core.cli import vllm

    parser = argparse.ArgumentParser()
    vllm.add_arguments(parser)
    assert vllm.run(parser.parse_args([str(lora_run), "--port", "8001"])) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("vllm serve ") and "--enable-lora" in printed and "--port 8001" in printed
