"""A GGUF that ``ftwiz export RUN --out ELSEWHERE`` wrote is chatted with, served, registered and evaluated as
its run trained.

``ftwiz chat runs/RUN/export/RUN-Q8_0.gguf`` sent the recipe's system prompt and ``enable_thinking``, but the
same export written with ``--out ~/models/aria.gguf`` sent neither, although the models registry (``ftwiz
models list``) records its source run. Oracle: the system turn of the records the data pipeline trains on,
and the recipe's ``enable_thinking``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.deploy.chat import resolve_chat_model
from meta_gguf import read_context_length

SYSTEM = "You are Aria, the bike-shop assistant. Answer in one sentence."


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def _trained_system(tiny_qwen2: Path, recipe_yaml: Path) -> str:
    """The system turn training puts in front of the records (the oracle)."""
    import transformers
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe import load_recipe

    recipe = load_recipe(recipe_yaml).model_copy(update={"model_name_or_path": str(tiny_qwen2)})
    prepared = prepare_for_training(recipe, transformers.AutoTokenizer.from_pretrained(tiny_qwen2))
    systems = {r["messages"][0]["content"] for r in prepared.splits["train"] if r["messages"][0]["role"] == "system"}
    assert len(systems) == 1
    return systems.pop()


def _run(root: Path, base: Path) -> Path:
    """A full fine-tune's run folder (its model: the tiny base) trained with a system prompt, thinking off."""
    run = root / "aria"
    run.mkdir(parents=True)
    shutil.copytree(base, run / "model")
    (run / "run_card.json").write_text(json.dumps({"base_model": str(base), "method": "full"}))
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    (run / "recipe.yaml").write_text(f"model_name_or_path: demo\ndataset: [{json.dumps(str(data))}]\n"
                                     f"system: {json.dumps(SYSTEM)}\nenable_thinking: false\ncutoff_len: 512\n",
                                     encoding="utf-8")
    return run


@pytest.mark.parametrize("runs_folder", ["runs", "elsewhere-runs"])
def test_a_gguf_exported_outside_its_run_chats_and_serves_as_the_run(isolated: Path, tiny_qwen2: Path,
                                                                     runs_folder: str) -> None:
    from ftwiz.core.export.pipeline import export_model

    run = _run(isolated / runs_folder, tiny_qwen2)  # a run under runs/, or one trained in a folder given by path
    out = isolated / "models" / "aria.gguf"
    out.parent.mkdir()
    export_model(run, ["F16"], out=out)
    ref = resolve_chat_model(str(out))
    assert ref.run_system_prompt() == _trained_system(tiny_qwen2, run / "recipe.yaml")  # chat and serve send it
    assert ref.run_enable_thinking() is False
    from ftwiz.core.deploy.register_step import register_inputs

    inputs = register_inputs(out)  # ftwiz register: the Modelfile's SYSTEM and thinking as trained
    assert (inputs.system, inputs.enable_thinking) == (ref.run_system_prompt(), False)
    from ftwiz.core.evaluate.targets import resolve_target

    target = resolve_target(out)  # ftwiz eval FILE.gguf: the run's test split, base model and prompt
    assert target.run is not None and target.run.root == run.resolve()
    assert (target.system, target.enable_thinking) == (ref.run_system_prompt(), False)

    plain = isolated / "models" / "plain.gguf"  # a model's export, no run behind it: nothing added
    export_model(tiny_qwen2, ["F16"], out=plain)
    assert resolve_chat_model(str(plain)).run_system_prompt() is None
    assert register_inputs(plain).system is None and resolve_target(plain).system is None


@pytest.mark.parametrize("quant", ["F16", "Q4_K_M"])
def test_a_moved_renamed_or_copied_gguf_is_still_prompted_as_its_run_trained(isolated: Path, tiny_qwen2: Path,
                                                                            tmp_path: Path, quant: str,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The export writes the run's system prompt and thinking choice into the GGUF (ftwiz.* keys): before, a
    GGUF moved out of runs/RUN/export/, renamed, or copied to another machine chatted without them, silently."""
    from ftwiz.core.deploy.register_step import register_inputs
    from ftwiz.core.evaluate.targets import resolve_target
    from ftwiz.core.export.pipeline import export_model

    run = _run(isolated / "runs", tiny_qwen2)
    result = export_model(run, [quant])
    exported = Path(result.gguf_paths[0])
    assert any("records the run's system prompt" in note for note in result.notes)  # the user is told
    trained = _trained_system(tiny_qwen2, run / "recipe.yaml")
    moved = isolated / "models" / "my-assistant.gguf"
    moved.parent.mkdir()
    shutil.move(exported, moved)  # no registry record for this path, not in a run folder
    shutil.rmtree(run)  # and the run folder is gone
    # another machine: an empty registry and no runs
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "other-data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "other-runs"))
    ref = resolve_chat_model(str(moved))
    assert (ref.run_system_prompt(), ref.run_enable_thinking()) == (trained, False)  # chat and serve
    inputs = register_inputs(moved)  # the Modelfile's SYSTEM, and num_ctx: the model's window (512 trained fits)
    assert (inputs.system, inputs.enable_thinking, inputs.num_ctx) == (trained, False, read_context_length(moved))
    target = resolve_target(moved)  # eval without the run: still prompted as trained
    assert target.run is None and (target.system, target.enable_thinking) == (trained, False)
    assert register_inputs(moved, system="Be terse.").system == "Be terse."  # --system still wins
    from ftwiz.core.cli import main

    capsys.readouterr()
    assert main(["models", "show", str(moved)]) == 0  # not in this registry: the file says which run it is
    shown = capsys.readouterr().out
    assert "run aria" in " ".join(shown.split()) and quant in shown, shown


def test_the_run_keys_leave_every_tensor_and_standard_key_as_llama_cpp_reads_them(isolated: Path,
                                                                                   tiny_qwen2: Path) -> None:
    """Only ftwiz.* keys are added: the run's GGUF and its model's plain export differ in nothing else, and
    llama.cpp loads it and tokenizes as before (oracle: the plain export, read by llama.cpp)."""
    import llama_cpp
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.gguf_info import read_metadata

    run = _run(isolated / "runs", tiny_qwen2)
    with_run = Path(export_model(run, ["F16"]).gguf_paths[0])
    # the same folder outside any run (the run's model/ itself is exported as the run's, keys included)
    outside = shutil.copytree(run / "model", isolated / "not-a-run" / "model")
    plain = Path(export_model(outside, ["F16"], out=isolated / "plain.gguf").gguf_paths[0])
    ours, theirs = read_metadata(with_run), read_metadata(plain)
    added = {k: v for k, v in ours.items() if k not in theirs}
    from ftwiz.core.recipe import load_recipe

    assert added == {"ftwiz.source_run": "aria", "ftwiz.system_prompt": SYSTEM, "ftwiz.enable_thinking": False,
                     "ftwiz.cutoff_len": load_recipe(run / "recipe.yaml").cutoff_len}
    for key, value in theirs.items():
        assert str(ours[key]) == str(value), key
    import gguf

    tensors = [{t.name: (t.tensor_type, t.data.tobytes()) for t in gguf.GGUFReader(p).tensors} for p in (with_run, plain)]
    assert tensors[0] == tensors[1]
    text = "Hello <|im_start|>user\nwörld 123"
    models = [llama_cpp.Llama(str(p), vocab_only=True, verbose=False) for p in (with_run, plain)]
    assert models[0].tokenize(text.encode(), special=True) == models[1].tokenize(text.encode(), special=True)


def test_reading_only_some_keys_matches_reading_all(isolated: Path, tiny_qwen2: Path) -> None:
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.gguf_info import read_metadata

    path = Path(export_model(tiny_qwen2, ["Q8_0"], out=isolated / "m.gguf").gguf_paths[0])
    everything = read_metadata(path)
    wanted = {"general.architecture", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template"}
    assert read_metadata(path, wanted=wanted.__contains__) == {k: everything[k] for k in wanted}


def test_chat_compare_asks_the_base_with_the_fine_tunes_system_prompt(isolated: Path, tiny_qwen2: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`ftwiz chat RUN --compare BASE.gguf` sent the fine-tune its trained system prompt and the base none (or,
    for a BASE that records a prompt of its own, that one), so the two columns answered different questions (the
    wizard's compare and ftwiz eval give both the same)."""
    import ftwiz.core.deploy.chat as chat
    from ftwiz.core.cli import main
    from ftwiz.core.export.pipeline import export_model

    run = _run(isolated / "runs", tiny_qwen2)
    tuned = export_model(run, ["F16"]).gguf_paths[0]
    base = export_model(tiny_qwen2, ["F16"], out=isolated / "base-F16.gguf").gguf_paths[0]
    asked: dict[str, str | None] = {}

    class Recorder:
        def __init__(self, model, *, system=None, **_kwargs) -> None:
            asked[str(model)] = system
            self.label, self.system, self.last_finish_reason = Path(str(model)).name, system, "stop"

        def reply(self, text: str) -> str:
            return "ok"

        def close(self) -> None:
            pass

    monkeypatch.setattr(chat, "ChatSession", Recorder)
    assert main(["chat", tuned, "--once", "Hi", "--compare", base]) == 0
    assert asked == {tuned: SYSTEM, base: SYSTEM}
    assert main(["chat", tuned, "--once", "Hi", "--compare", base, "--system", "Be terse."]) == 0
    assert asked == {tuned: "Be terse.", base: "Be terse."}
    # the other way round: a fine-tune without a system prompt against a BASE whose GGUF records one (an earlier
    # run's): the base was asked with its own prompt; now neither gets a system turn
    assert main(["chat", base, "--once", "Hi", "--compare", tuned]) == 0
    assert not asked[base] and not asked[tuned]
