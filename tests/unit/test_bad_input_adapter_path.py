"""`adapter_name_or_path` that training cannot continue: `ftwiz recipe validate` said ok to a missing folder, a
folder without adapter_config.json, a pickled adapter_model.bin (which train then unpickled, with a traceback)
and an adapter of another base model (train failed after making a run folder, with one size mismatch per tensor).
Now validate and train refuse each, naming the recipe field and the adapter path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_input_cli import one_line


@pytest.fixture(scope="module")
def qwen2_adapter(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter saved by peft (safetensors) on tiny_qwen2's q_proj/v_proj."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = tmp_path_factory.mktemp("adapter") / "adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_qwen2),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(adapter)
    return adapter


def _validate(tmp_path: Path, model: Path | str, adapter: Path | str, capsys: pytest.CaptureFixture[str],
              method: str = "lora") -> tuple[int, str, Path]:
    from ftwiz.core.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: {model}\ndataset: [demo]\nfinetuning_type: {method}\n"
                      f"adapter_name_or_path: {adapter}\n", encoding="utf-8")
    code = main(["recipe", "validate", str(recipe)])
    return code, one_line(capsys.readouterr().err), recipe


def test_validate_refuses_an_adapter_path_training_could_not_continue(
        tmp_path: Path, tiny_qwen2: Path, qwen2_adapter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, tiny_qwen2, qwen2_adapter, capsys)[0] == 0  # the adapter of this base: ok
    head = "error: {recipe}, field 'adapter_name_or_path': adapter_name_or_path '{path}': "
    missing = tmp_path / "no-such-adapter"
    code, err, recipe = _validate(tmp_path, tiny_qwen2, missing, capsys)
    assert code == 2 and err.startswith(head.format(recipe=recipe, path=missing) + f"no LoRA adapter at '{missing}' "
                                        "(no such folder, and no completed run of that name with an adapter)")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err, recipe = _validate(tmp_path, tiny_qwen2, empty, capsys)
    assert code == 2 and "(the folder has no adapter_config.json," in err
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(qwen2_adapter / "adapter_config.json", pickled)
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    code, err, recipe = _validate(tmp_path, tiny_qwen2, pickled, capsys)
    assert code == 2 and err.startswith(head.format(recipe=recipe, path=pickled) + f"{pickled}: adapter_model."
                                        "safetensors is missing (only a pickled adapter_model.bin) fix: ")
    cut = tmp_path / "cut"
    shutil.copytree(qwen2_adapter, cut)
    data = (cut / "adapter_model.safetensors").read_bytes()
    (cut / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    code, err, recipe = _validate(tmp_path, tiny_qwen2, cut, capsys)
    assert code == 2 and err.startswith(head.format(recipe=recipe, path=cut) + f"{cut / 'adapter_model.safetensors'}:"
                                        " file is truncated")
    code, err, recipe = _validate(tmp_path, tiny_qwen2, qwen2_adapter, capsys, method="full")
    assert code == 2 and ("adapter_name_or_path continues a LoRA adapter, but finetuning_type: full trains every "
                          "weight and would ignore it") in err


def test_an_adapter_of_another_base_model_is_refused_before_a_run_folder(
        tmp_path: Path, tiny_qwen2: Path, tiny_qwen3: Path, qwen2_adapter: Path, ftwiz_env: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    code, err, recipe = _validate(tmp_path, tiny_qwen3, qwen2_adapter, capsys)
    weights = qwen2_adapter / "adapter_model.safetensors"
    assert code == 2 and err.startswith(
        f"error: {recipe}, field 'adapter_name_or_path': adapter_name_or_path '{qwen2_adapter}': {weights}: the "
        f"adapter at {qwen2_adapter} was trained on {tiny_qwen2} and does not fit model_name_or_path '{tiny_qwen3}': "
        "its LoRA pair for model.layers.0.self_attn.q_proj is for a [64, 64] weight, the base model's "
        "model.layers.0.self_attn.q_proj.weight is [128, 64] fix: set model_name_or_path to the model the adapter "
        f"was trained on ({tiny_qwen2})")
    assert main(["train", str(recipe), "--run-name", "other-base"]) == 2
    assert "does not fit model_name_or_path" in one_line(capsys.readouterr().err)
    assert not (ftwiz_env["runs"] / "other-base").exists()


def test_train_from_with_a_full_fine_tune_is_refused(tmp_path: Path, tiny_qwen2: Path, qwen2_adapter: Path,
                                                      ftwiz_env: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # --from set adapter_name_or_path past the recipe's rules: full training ignored the adapter, silently
    from ftwiz.core.cli import main

    recipe = tmp_path / "full.yaml"
    recipe.write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: [demo]\nfinetuning_type: full\n", encoding="utf-8")
    assert main(["train", str(recipe), "--from", str(qwen2_adapter), "--run-name", "full-from"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"error: {recipe}: --from {qwen2_adapter}: adapter_name_or_path continues a LoRA adapter, but finetuning_type: "
        "full trains every weight and would ignore it: use finetuning_type: lora (or qlora), or remove "
        "adapter_name_or_path fix: train without --from, or set finetuning_type: lora (or qlora) in the recipe")
    assert not (ftwiz_env["runs"] / "full-from").exists()


def test_an_adapter_config_whose_r_is_not_the_weights_rank_is_refused_naming_r(
        tmp_path: Path, tiny_qwen2: Path, qwen2_adapter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """adapter_config.json edited to another r: validate said ok, and train failed after making a run folder with a
    size mismatch per tensor and the fix 'use the same model_name_or_path'. Oracle: peft refuses to load it, and the
    rank is the safetensors file's own lora_A shape."""
    import json

    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    edited = tmp_path / "edited"
    shutil.copytree(qwen2_adapter, edited)
    config = json.loads((edited / "adapter_config.json").read_text(encoding="utf-8"))
    config["r"] = 8
    (edited / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    with safe_open(str(edited / "adapter_model.safetensors"), "pt") as weights:
        ranks = {weights.get_slice(k).get_shape()[0] for k in weights.keys()  # noqa: SIM118
                 if k.endswith("lora_A.weight")}
    assert ranks == {4}
    with pytest.raises(RuntimeError, match="size mismatch"):  # what training met after its run folder was made
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen2), str(edited))
    code, err, recipe = _validate(tmp_path, tiny_qwen2, edited, capsys)
    assert code == 2 and f"{edited / 'adapter_config.json'}, field 'r': adapter_config.json says r: 8, but the " \
        "adapter's weights have rank 4" in err, err
    assert 'fix: set "r": 4 in' in err, err


def test_an_adapter_of_another_peft_type_is_refused_with_a_fix_that_is_not_the_recipe_it_already_has(
        tmp_path: Path, tiny_qwen2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An IA3 adapter (peft's own config) given to a lora recipe: the fix said 'train with method lora or qlora',
    which the recipe already does. Oracle: peft's IA3Config saved by save_pretrained."""
    from peft import IA3Config, get_peft_model
    from transformers import AutoModelForCausalLM

    ia3 = tmp_path / "ia3"
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_qwen2),
                   IA3Config(target_modules=["k_proj", "v_proj", "down_proj"],
                             feedforward_modules=["down_proj"])).save_pretrained(ia3)
    code, err, _recipe = _validate(tmp_path, tiny_qwen2, ia3, capsys)
    assert code == 2 and "adapter type IA3 is not a LoRA adapter" in err, err
    assert "fix: point at a LoRA adapter" in err and "train with method" not in err, err
