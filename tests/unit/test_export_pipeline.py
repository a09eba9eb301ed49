"""``export_model``: a run directory in, GGUF files where later stages look for them, progress on the bus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError


def _run(root: Path, base: Path, *, full: bool = False):
    import torch
    from ftwiz.core.rundir import RunDir
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = RunDir(root)
    root.mkdir(parents=True, exist_ok=True)
    run.recipe.write_text(f"model_name_or_path: {base}\n")
    run.run_card.write_text(json.dumps({"base_model": str(base), "method": "full" if full else "lora"}))
    if full:
        shutil.copytree(base, run.model)
        return run
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    peft_model.save_pretrained(run.adapter)
    return run


def test_lora_run_is_merged_once_and_exported_into_the_run(tiny_qwen2: Path, ftwiz_env) -> None:
    from ftwiz.core.events import EventBus, Progress
    from ftwiz.core.export.pipeline import export_model

    run = _run(ftwiz_env["runs"] / "pipe-lora", tiny_qwen2)
    bus = EventBus()
    seen: list[Progress] = []
    bus.subscribe(lambda e: seen.append(e) if isinstance(e, Progress) else None)
    result = export_model("pipe-lora", ["Q8_0", "F16"], events=bus)
    assert result.merged and Path(result.model_dir) == run.merged
    assert [Path(p).name for p in result.gguf_paths] == ["pipe-lora-Q8_0.gguf", "pipe-lora-F16.gguf"]
    assert all(Path(p).parent == run.export for p in result.gguf_paths)
    assert seen and all(e.stage == "export" for e in seen)
    assert seen[-1].done == seen[-1].total
    assert any("merging" in e.message for e in seen)
    again = export_model("pipe-lora", ["BF16"])
    assert not again.merged  # the merged model is newer than the adapter: reused, not redone


def test_full_fine_tune_exports_its_model_directly(tiny_qwen2: Path, ftwiz_env) -> None:
    from ftwiz.core.export.pipeline import export_model

    run = _run(ftwiz_env["runs"] / "pipe-full", tiny_qwen2, full=True)
    result = export_model(run.root, ["F16"])
    assert Path(result.model_dir) == run.model and not run.merged.exists()
    assert (run.export / "pipe-full-F16.gguf").is_file()


def test_one_out_file_for_several_quants_is_refused(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.pipeline import export_model

    with pytest.raises(FtwizError, match="one file"):
        export_model(tiny_qwen2, ["F16", "Q8_0"], out=tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())


def test_out_file_with_upper_case_extension_is_that_file(tiny_qwen2: Path, tmp_path: Path) -> None:
    """--out Model.GGUF is the file the user named; it became a folder Model.GGUF/ holding <name>-F16.gguf."""
    from ftwiz.core.export.pipeline import export_model

    result = export_model(tiny_qwen2, ["F16"], out=tmp_path / "Model.GGUF")
    assert result.gguf_paths == [str(tmp_path / "Model.GGUF")]
    assert (tmp_path / "Model.GGUF").is_file()
    with pytest.raises(FtwizError, match="one file"):
        export_model(tiny_qwen2, ["F16", "Q8_0"], out=tmp_path / "two.Gguf")


@pytest.mark.parametrize("arch", ["gemma2", "gemma3"])
def test_gemma_lora_run_to_verified_gguf_and_modelfile(arch: str, ftwiz_env, tmp_path: Path) -> None:
    """The whole export path for a Gemma fine-tune: LoRA run -> merged 16-bit model -> Q8_0 GGUF that
    verifies against transformers -> a Modelfile whose TEMPLATE is Gemma's and stops on <end_of_turn>."""
    from ftwiz.core.deploy.modelfile import modelfile_spec
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.tiny import build_tiny_model

    base = build_tiny_model(tmp_path / arch, arch=arch, num_layers=7 if arch == "gemma3" else 2, init_std=0.05)
    _run(ftwiz_env["runs"] / f"pipe-{arch}", base)
    result = export_model(f"pipe-{arch}", ["Q8_0"], verify=True)
    report = result.reports[0]
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.checks if c.passed is False]
    assert report.logits.value >= 0.99  # Q8_0 cosine
    spec = modelfile_spec(result.gguf_paths[0])
    assert spec.template.family == "gemma"
    assert "<end_of_turn>" in spec.stops
