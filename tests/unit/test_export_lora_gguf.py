"""Adapter-only export: a GGUF LoRA adapter that llama.cpp applies to the base GGUF like peft would.

Proof by behaviour: base GGUF + adapter GGUF in llama-cpp-python gives the logits of the peft-merged
model in transformers (the q/k rows of lora_B need the same permutation as the base's q/k).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ftwiz.core.errors import FtwizError


def _adapter(base: Path, out: Path, **kw):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM", target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], **kw))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    peft_model.save_pretrained(out)
    return peft_model


@pytest.fixture(scope="module")
def llama01(tmp_path_factory) -> Path:
    from ftwiz.core.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("llama01"), arch="llama", init_std=0.1)


def test_adapter_gguf_layout(llama01: Path, tmp_path: Path) -> None:
    import gguf
    from ftwiz.core.export.lora_gguf import convert_adapter_to_gguf

    _adapter(llama01, tmp_path / "adapter")
    path = convert_adapter_to_gguf(tmp_path / "adapter", tmp_path / "lora.gguf")
    reader = gguf.GGUFReader(path)

    def text(key: str) -> str:
        field = reader.fields[key]
        return bytes(field.parts[field.data[0]]).decode()

    assert text("general.type") == "adapter"
    assert text("adapter.type") == "lora"
    assert text("general.architecture") == "llama"
    alpha = reader.fields["adapter.lora.alpha"]
    assert float(alpha.parts[alpha.data[0]][0]) == 8.0
    tensors = {t.name: t for t in reader.tensors}
    assert list(tensors["blk.0.attn_q.weight.lora_a"].shape) == [64, 4]  # ggml [in, r]
    assert list(tensors["blk.0.attn_q.weight.lora_b"].shape) == [4, 64]  # ggml [r, out]
    assert len(tensors) == 2 * 7 * 2


def test_adapter_gguf_applies_like_peft_merge(llama01: Path, tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    import torch
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.lora_gguf import convert_adapter_to_gguf

    peft_model = _adapter(llama01, tmp_path / "adapter")
    base_gguf = convert_to_gguf(llama01, tmp_path / "base.gguf", "F32")
    lora = convert_adapter_to_gguf(tmp_path / "adapter", tmp_path / "lora.gguf")
    merged = peft_model.merge_and_unload()
    ids = [5, 17, 42, 99, 123, 7, 64, 200]
    with torch.no_grad():
        expected = merged(torch.tensor([ids])).logits[0].numpy()
    llm = llama_cpp.Llama(model_path=str(base_gguf), lora_path=str(lora), n_ctx=64, logits_all=True,
                          verbose=False, n_threads=2)
    llm.eval(ids)
    got = np.array(llm.scores[: len(ids)])
    span = expected.max() - expected.min()
    assert np.max(np.abs(got - expected)) / span < 1e-3
    plain = llama_cpp.Llama(model_path=str(base_gguf), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    plain.eval(ids)
    assert np.max(np.abs(np.array(plain.scores[: len(ids)]) - expected)) / span > 1e-2  # the adapter matters


def test_dora_adapter_is_refused_with_merge_hint(llama01: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.lora_gguf import convert_adapter_to_gguf

    _adapter(llama01, tmp_path / "adapter", use_dora=True)
    with pytest.raises(FtwizError) as info:
        convert_adapter_to_gguf(tmp_path / "adapter", tmp_path / "lora.gguf")
    assert "DoRA" in info.value.what and "merge" in info.value.fix
    assert not (tmp_path / "lora.gguf").exists()


def test_trainable_token_rows_are_refused_with_merge_hint(llama01: Path, tmp_path: Path) -> None:
    """A GGUF LoRA adapter holds only lora_a/lora_b pairs: the trained rows of trainable_token_indices would be
    dropped without a word, so the adapter-only export refuses and points at the merge, which applies them."""
    from ftwiz.core.export.lora_gguf import convert_adapter_to_gguf

    _adapter(llama01, tmp_path / "adapter", trainable_token_indices=[3, 4])
    with pytest.raises(FtwizError) as info:
        convert_adapter_to_gguf(tmp_path / "adapter", tmp_path / "lora.gguf")
    assert "model.embed_tokens.weight" in info.value.what and "merge" in info.value.fix
    assert not (tmp_path / "lora.gguf").exists()


def test_check_with_adapter_only_says_whether_the_adapter_export_works(llama01: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`export ADAPTER --adapter-only --check` checked the folder as a model: 'not exportable', with the fix
    '... or keep it an adapter: ftwiz export ADAPTER --adapter-only', the very command given. Oracle: the
    --adapter-only export itself, which writes a plain LoRA and refuses DoRA."""
    from ftwiz.core.cli import main

    _adapter(llama01, tmp_path / "lora")
    _adapter(llama01, tmp_path / "dora", use_dora=True)
    for name in ("lora", "dora"):
        exported = main(["export", str(tmp_path / name), "--adapter-only", "--out", str(tmp_path / f"{name}.gguf")])
        capsys.readouterr()
        checked = main(["export", str(tmp_path / name), "--adapter-only", "--check"])
        said = " ".join(capsys.readouterr().out.split())
        assert (exported == 0) == (checked == 0) == (name == "lora"), (name, exported, checked, said)
        if name == "lora":
            assert "exportable as a GGUF LoRA adapter" in said and "--adapter-only" not in said
        else:
            assert "not exportable" in said and "DoRA" in said
