"""The model's recommended sampling (generation_config.json) reaches the GGUF as llama.cpp's converter writes it,
so llama-server and llama-cli sample as the model's authors recommend when the user sets nothing. Oracle: gguf-py's
``Metadata.load``, what the converter reads the file with, and llama.cpp's own reading of the GGUF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def _model_with(tmp_path: Path, tiny_qwen2: Path, generation: dict) -> Path:
    model = Path(shutil.copytree(tiny_qwen2, tmp_path / "model"))
    config = json.loads((model / "generation_config.json").read_text()) if (model / "generation_config.json").is_file() \
        else {}
    (model / "generation_config.json").write_text(json.dumps({**config, **generation}))
    return model


def test_recommended_sampling_is_in_the_gguf_as_the_converter_writes_it(tmp_path: Path, tiny_qwen2: Path) -> None:
    import gguf
    import llama_cpp
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.gguf_info import read_metadata

    model = _model_with(tmp_path, tiny_qwen2, {"do_sample": True, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
                                               "repetition_penalty": 1.05})
    out = Path(export_model(model, ["F16"], out=tmp_path / "m.gguf").gguf_paths[0])
    ours = {k: v for k, v in read_metadata(out).items() if k.startswith("general.sampling.")}

    expected = gguf.Metadata.load(None, model, None, 0)  # the converter's reading of the same folder
    read = {f"general.sampling.{key}": getattr(expected, f"sampling_{key}")
            for key in ("temp", "top_k", "top_p", "min_p", "penalty_repeat")}
    read = {k: v for k, v in read.items() if v is not None}
    assert {k: ours[k] for k in read} == pytest.approx(read) and len(read) >= 3
    # the converter of the llama.cpp that llama-cpp-python 0.3.36 builds takes repetition_penalty as penalty_repeat
    # when no penalty_repeat is given (its gguf-py is newer than the gguf release on PyPI)
    assert ours["general.sampling.penalty_repeat"] == pytest.approx(1.05)
    llm = llama_cpp.Llama(model_path=str(out), vocab_only=True, verbose=False)
    try:  # llama.cpp reads them with their types
        assert float(llm.metadata["general.sampling.temp"]) == pytest.approx(0.6)
        assert int(llm.metadata["general.sampling.top_k"]) == 20
    finally:
        llm.close()


def test_a_setting_of_the_wrong_type_is_named_with_its_file(tmp_path: Path, tiny_qwen2: Path) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.pipeline import export_model

    model = _model_with(tmp_path, tiny_qwen2, {"top_k": "twenty"})
    with pytest.raises(FtwizError) as caught:
        export_model(model, ["F16"], out=tmp_path / "m.gguf")
    assert "generation_config.json" in str(caught.value.where) and "top_k" in caught.value.what
    assert not (tmp_path / "m.gguf").exists()
