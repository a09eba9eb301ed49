"""``ftwiz export RUN --adapter-only`` writes the run's system prompt and thinking choice into the GGUF LoRA
adapter, and ``ftwiz register BASE.gguf --adapter ADAPTER.gguf`` prompts the pair as the adapter was trained.

Before, the adapter GGUF carried no ``ftwiz.*`` keys and register took the system prompt from the base GGUF
only (a plain base has none): the Modelfile had no SYSTEM although every training record began with it, even
with the adapter still in its run folder. Oracles: the system turn the data pipeline trains on; llama.cpp
loading the base with the adapter and reading its keys.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SYSTEM = "You are Aria, the bike-shop assistant.\nAnswer in one sentence ✓."


def _run(root: Path, base: Path) -> Path:
    """A LoRA run folder: its adapter (peft, on ``base``) and a recipe with a system prompt, thinking off."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = root / "runs" / "aria"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=2, lora_alpha=4, task_type="CAUSAL_LM", target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(run / "adapter")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(base), "method": "lora"}))
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    (run / "recipe.yaml").write_text(f"model_name_or_path: {json.dumps(str(base))}\ndataset: "
                                     f"[{json.dumps(str(data))}]\nsystem: {json.dumps(SYSTEM)}\n"
                                     "enable_thinking: false\n", encoding="utf-8")
    return run


def test_register_with_a_runs_adapter_sends_the_prompt_it_was_trained_with(
        tmp_path: Path, tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp
    import transformers
    from ftwiz.core.cli import main as cli_main
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.deploy.register_step import register_inputs
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.recipe import load_recipe

    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    run = _run(tmp_path, tiny_qwen2)
    prepared = prepare_for_training(load_recipe(run / "recipe.yaml"),
                                    transformers.AutoTokenizer.from_pretrained(tiny_qwen2))
    assert {r["messages"][0]["content"] for r in prepared.splits["train"]} == {SYSTEM}  # what training sent

    base = Path(export_model(tiny_qwen2, ["F16"], out=tmp_path / "models" / "base.gguf").gguf_paths[0])
    assert cli_main(["export", "aria", "--adapter-only"]) == 0
    in_run = run / "export" / "aria-lora-F32.gguf"
    assert register_inputs(base, adapter=in_run).system == SYSTEM  # beside its run

    moved = tmp_path / "models" / "aria-lora.gguf"
    shutil.move(in_run, moved)
    shutil.rmtree(run)  # the run is gone: the adapter file itself says it
    llm = llama_cpp.Llama(str(base), lora_path=str(moved), verbose=False)  # llama.cpp still applies it
    assert llm.n_vocab() > 0
    import gguf

    fields = gguf.GGUFReader(moved).fields
    assert fields["ftwiz.system_prompt"].contents() == SYSTEM and fields["ftwiz.enable_thinking"].contents() is False
    inputs = register_inputs(base, adapter=moved)
    assert (inputs.system, inputs.enable_thinking) == (SYSTEM, False)
    assert register_inputs(base, adapter=moved, system="Be terse.").system == "Be terse."  # --system still wins
    assert register_inputs(base).system is None  # the base alone was trained with none

    modelfile = tmp_path / "Modelfile"
    assert cli_main(["register", str(base), "--adapter", str(moved), "--modelfile", str(modelfile)]) == 0
    assert f'SYSTEM """{SYSTEM}"""' in modelfile.read_text(encoding="utf-8")
