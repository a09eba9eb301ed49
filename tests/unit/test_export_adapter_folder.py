"""``ftwiz export ADAPTER_FOLDER`` (a peft adapter, as other tools save them) said "has no config.json, so it is
not a Hugging Face model folder; point at the folder that contains config.json", leaving the user to guess that
an adapter needs merging. It now says so, and the commands it gives work: merged with the given command, the
folder exports to a GGUF that loads in llama.cpp."""

from __future__ import annotations

import shlex
from pathlib import Path

from bad_input_cli import ftwiz, one_line, refused


def test_adapter_folder_is_named_with_commands_that_export_it(tiny_qwen2: Path, tmp_path: Path) -> None:
    import llama_cpp
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(
        tmp_path / "adapter")
    err = refused(ftwiz("export", str(tmp_path / "adapter"), "--quant", "F16"))
    assert "is a LoRA adapter, not a model" in err, err
    fix = err.split("fix: ", 1)[1]
    merge_cmd, export_cmd = fix.split("; or ")[0].split(" && ")
    for command in (merge_cmd, export_cmd + " --quant F16"):
        args = shlex.split(command)
        assert args[0] == "ftwiz"
        result = ftwiz(*args[1:], cwd=tmp_path)  # a model folder's GGUF is written into the working folder
        assert result.returncode == 0, one_line(result.stdout + result.stderr)
    llama_cpp.Llama(model_path=str(tmp_path / "adapter-merged-F16.gguf"), vocab_only=True, verbose=False).close()
    check = ftwiz("export", str(tmp_path / "adapter"), "--check")
    assert "is a LoRA adapter, not a model" in one_line(check.stdout + check.stderr)
