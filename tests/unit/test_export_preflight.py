"""``check_exportable``: the answer a user gets before training, from config and tokenizer files only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def test_supported_model_is_exportable_with_sizes(tiny_qwen2: Path) -> None:
    from ftwiz.core.export.preflight import check_exportable

    check = check_exportable(tiny_qwen2, quants=["Q4_K_M", "Q8_0"])
    assert check.ok, check.problems
    assert check.architecture == "Qwen2ForCausalLM" and check.gguf_architecture == "qwen2"
    assert check.tokenizer == "byte-level BPE (pre-tokenizer qwen2)"
    assert check.parameters and check.parameters > 10_000
    from ftwiz.core.export.kquant import direct_quant_available

    # an F16 copy is counted only where llama.cpp's quantizer makes the K-quant from one
    assert check.bytes_needed.get("F16") == (None if direct_quant_available("Q4_K_M") else 2 * check.parameters)
    assert check.bytes_needed["Q8_0"] < 2 * check.parameters
    assert check.bytes_needed["Q4_K_M"] < check.bytes_needed["Q8_0"]
    assert check.bytes_needed["total"] == sum(v for k, v in check.bytes_needed.items() if k != "total")


def test_unsupported_architecture_and_missing_tokenizer_are_reported(tiny_llama: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.preflight import check_exportable

    model = tmp_path / "odd"
    shutil.copytree(tiny_llama, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["architectures"] = ["FalconForCausalLM"]
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "tokenizer.json").unlink()
    check = check_exportable(model)
    assert not check.ok
    assert any("FalconForCausalLM" in p for p in check.problems)
    assert any("tokenizer" in p for p in check.problems)
    assert len(check.fixes) >= 2


def test_missing_model_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    from ftwiz.core.export.preflight import check_exportable

    check = check_exportable(tmp_path / "nowhere")
    assert not check.ok and check.problems
