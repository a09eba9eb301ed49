"""Bad input a careless new user gives the CLI: each gets an error naming the file, line or field and what
to do (exit status 2), never a Python traceback, and nothing is written where it should not be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_cli import ftwiz, gguf_with_tensors, one_line, refused


def test_a_json_array_saved_as_jsonl_is_named_with_the_rename(tmp_path: Path) -> None:
    # json.dump(records) into data.jsonl: every line was "invalid JSON" or the whole file one rejected record
    from ftwiz.core.data import check_dataset
    from ftwiz.core.errors import FtwizError

    rows = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(3)]
    for text in (json.dumps(rows), json.dumps(rows, indent=2)):
        path = tmp_path / "my data.jsonl"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(FtwizError) as caught:
            check_dataset(str(path))
        assert one_line(caught.value.render()) == (
            f"{path}, line 1: the file is one JSON array of 3 records, not JSON Lines (one record a line) fix: rename "
            "it to my data.json: ftwiz reads a JSON array from .json files (or write one record per line)")
        assert not (tmp_path / "my data.rejects.jsonl").exists()
    (tmp_path / "my data.json").write_text(json.dumps(rows), encoding="utf-8")  # the fix works
    assert check_dataset(str(tmp_path / "my data.json")).kept == 3


def test_a_latin1_jsonl_is_one_encoding_error_not_a_reject_per_line(tmp_path: Path) -> None:
    from ftwiz.core.data import check_dataset
    from ftwiz.core.errors import FtwizError

    path = tmp_path / "export.jsonl"
    rows = [{"instruction": f"Où est le café {i} ?", "output": "Là-bas."} for i in range(4)]
    path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("latin-1"))
    with pytest.raises(FtwizError) as caught:
        check_dataset(str(path))
    assert one_line(caught.value.render()) == f"{path}, line 1: not valid UTF-8 at byte 18 fix: re-save the file as UTF-8"


def test_a_recipe_key_set_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    # a user copies `cutoff_len: 512` to the end to edit it, and edits the first one: YAML kept the last, silently
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\ncutoff_len: 1024\nlearning_rate: 1e-4\n"
                      "cutoff_len: 256\n", encoding="utf-8")
    err = refused(ftwiz("recipe", "validate", str(recipe)))
    assert f"error: {recipe}, line 5, field 'cutoff_len': 'cutoff_len' is set twice, on lines 3 and 5" in err
    assert "fix: delete one of the two lines: YAML keeps only the last, so the first is ignored" in err

    from ftwiz.core.recipe import load_recipe

    # a YAML merge key (<<) may still be overridden, as YAML means it to be
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n<<: {lora_rank: 4}\nlora_rank: 16\n", encoding="utf-8")
    assert load_recipe(recipe).lora_rank == 16


def test_plan_given_a_data_file_as_the_model_says_so(tmp_path: Path) -> None:
    # `ftwiz plan my-data.csv`: a Latin-1 CSV raised UnicodeDecodeError, a .jsonl said "config.json is not valid JSON"
    csv_file = tmp_path / "my data.csv"
    csv_file.write_bytes("instruction,output\nCafé?,Oui\n".encode("latin-1"))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n', encoding="utf-8")
    for path in (csv_file, jsonl):
        err = refused(ftwiz("plan", str(path)))
        assert f"error: {path}: a file, not a model: give the model's folder (with config.json) or its config.json" in err
        assert "(a dataset goes in the recipe's dataset:)" in err
    config = tmp_path / "config.json"
    config.write_bytes(b"\xff\xfe{\x00}\x00")  # saved as UTF-16 by an editor
    assert f"error: {config}: config.json is not UTF-8 text (byte 0)" in refused(ftwiz("plan", str(config)))


def _with_a_broken_line(path: Path) -> bytes:
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n'
                    '{"instruction": "e", "output": "f"}\n', encoding="utf-8")
    return path.read_bytes()


def test_check_never_writes_its_rejects_over_the_dataset(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    before = _with_a_broken_line(data)
    for given in (str(data), "./chats.jsonl"):  # it replaced the user's data with its one rejected line
        err = refused(ftwiz("data", "check", str(data), "--rejects", given, cwd=tmp_path))
        assert err.startswith("error: --rejects ") and err.count("--rejects") == 2, err  # named once, then the fix
        assert "is the dataset itself: the rejects would replace your data" in err
        assert "fix: leave --rejects out (they go to chats.rejects.jsonl beside the data), or name another file" in err
    assert data.read_bytes() == before
    # a folder as --rejects gets the usual name inside it (it was an IsADirectoryError traceback)
    (tmp_path / "reports").mkdir()
    result = ftwiz("data", "check", str(data), "--rejects", str(tmp_path / "reports"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads((tmp_path / "reports" / "chats.rejects.jsonl").read_text(encoding="utf-8"))["line"] == 2


def test_prepare_out_on_a_file_and_a_folder_named_like_data(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    _with_a_broken_line(data)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n", encoding="utf-8")
    err = refused(ftwiz("data", "prepare", str(data), "--out", str(notes)))  # was a FileExistsError traceback
    assert f"error: {notes}: --out {notes} is a file; the splits go into a folder" in err
    assert notes.read_text(encoding="utf-8") == "mine\n"
    # a folder named old.jsonl inside a dataset folder is not a data file (it was an IsADirectoryError)
    (tmp_path / "old.jsonl").mkdir()
    result = ftwiz("data", "check", str(tmp_path))
    assert "Traceback" not in result.stderr and "records read 3, kept 2, rejected 1" in one_line(result.stdout)


def test_a_file_or_a_missing_path_as_the_model_is_refused_before_a_run_folder(tmp_path: Path,
                                                                               ftwiz_env: dict[str, Path]) -> None:
    from ftwiz.core.cli.pull import ensure_model  # what train checks before it makes a run folder
    from ftwiz.core.errors import FtwizError

    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n', encoding="utf-8")
    runs_before = set(ftwiz_env["runs"].iterdir())
    # ./my-model (one slash) was taken for a hub id: "not in the local Hugging Face cache, run `ftwiz pull ./my-model`"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: ./my-model\ndataset: [{data}]\n", encoding="utf-8")
    err = refused(ftwiz("train", str(recipe), cwd=tmp_path))
    assert "error: model not found: ./my-model" in err and "pull" not in err
    # a GGUF or a dataset file: "model not found", and train left a failed run folder behind
    gguf_path = gguf_with_tensors(tmp_path / "exported.gguf")
    for model, said in ((gguf_path, "is a GGUF file, already exported, not a Hugging Face model folder"),
                        (data, "is a file, not a Hugging Face model folder")):
        with pytest.raises(FtwizError) as caught:
            ensure_model(str(model), None, download=False)
        assert one_line(caught.value.render()).startswith(f"{model} {said} fix: ")
    assert "fix: chat with it, serve or register it" in refused(ftwiz("export", str(gguf_path)))
    assert set(ftwiz_env["runs"].iterdir()) == runs_before


def test_an_empty_dataset_file_is_named_before_training(tmp_path: Path) -> None:
    # train said "no usable records in data.jsonl (0 rejected)" after making a failed run folder
    (tmp_path / "data.jsonl").write_bytes(b"")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [data.jsonl]\n", encoding="utf-8")
    err = refused(ftwiz("recipe", "validate", str(recipe), cwd=tmp_path))
    assert f"error: {recipe}, field 'dataset[0]': the dataset file is empty: data.jsonl" in err
    assert "fix: put records in it" in err


def test_eval_data_in_another_encoding_a_folder_or_empty(tmp_path: Path) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.evaluate.pretrain import load_documents
    from ftwiz.core.evaluate.samples import load_samples

    def said(path: Path) -> str:  # what `ftwiz eval RUN --data PATH` prints: the raw-text check, then the samples
        assert load_documents(path) is None
        with pytest.raises(FtwizError) as caught:
            load_samples(path)
        return one_line(caught.value.render())

    record = {"prompt": "Où est la gare ?", "reference": "Là-bas."}
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes((json.dumps(record, ensure_ascii=False) + "\n").encode("latin-1"))  # UnicodeDecodeError
    assert said(latin1) == f"{latin1}, line 1: not valid UTF-8 at byte 13 fix: re-save the file as UTF-8"
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-16"))
    assert said(utf16).startswith(f"{utf16}, line 1: the file is UTF-16, not UTF-8 fix: re-save the file as UTF-8")
    # a folder "does not exist"; an empty file of the user's own "was not held out"
    assert said(tmp_path) == (f"{tmp_path} is a folder; this takes one JSONL file fix: give a file in "
                              f"it, e.g. {tmp_path / 'test.jsonl'} (`ftwiz data prepare` writes "
                              "train/validation/test.jsonl)")
    empty = tmp_path / "questions.jsonl"
    empty.write_bytes(b"\n")
    assert said(empty).startswith(f"{empty}: the file is empty (no records) fix: put one JSON object a line in it")
    # a UTF-8 BOM (Notepad) is read, as `ftwiz data` reads it ("not valid JSON (Unexpected UTF-8 BOM)")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(record).encode() + b"\n")
    assert [s.reference for s in load_samples(bom)] == ["Là-bas."]


def test_data_options_out_of_range_are_named_as_options(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    _with_a_broken_line(data)
    # it said "invalid recipe: 'cutoff_len' ... correct the keys above; `ftwiz recipe new`" to someone with no recipe
    err = refused(ftwiz("data", "stats", str(data), "--cutoff-len", "0"))
    assert "error: invalid option: - --cutoff-len: Input should be greater than or equal to 16 (got 0)" in err
    assert "fix: correct the option above; `ftwiz data --help` lists them" in err and "recipe" not in err
    assert "- --template: unknown chat template 'chatlm'" in refused(ftwiz("data", "preview", str(data),
                                                                          "--template", "chatlm"))
    # it printed "steps per epoch at an effective batch of 0: 24"
    err = refused(ftwiz("data", "stats", str(data), "--batch-size", "0"))
    assert "error: --batch-size 0 must be at least 1" in err


def test_train_refuses_a_bad_vram_gb_before_making_a_run_folder(tmp_path: Path, ftwiz_env: dict[str, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    assert main(["train", str(recipe), "--vram-gb", "0", "--run-name", "vram-zero"]) == 2
    assert "--vram-gb 0.0 is not a plausible amount of GPU memory" in one_line(capsys.readouterr().err)
    assert not (ftwiz_env["runs"] / "vram-zero").exists()  # a failed run folder was left for it


def test_completion_out_never_overwrites_a_file_of_the_users(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("mine\n", encoding="utf-8")
    err = refused(ftwiz("completion", "bash", "--install", "--out", str(mine)))  # it was replaced by the script
    assert f"error: {mine} exists and is not an ftwiz completion script" in err
    assert "fix: give another --out, or move that file away first" in err and mine.read_text() == "mine\n"
    # a folder gets the file the shell expects (IsADirectoryError), and --out alone installs (it printed and wrote
    # nothing); writing it again replaces ftwiz's own script
    for _ in range(2):
        result = ftwiz("completion", "fish", "--out", str(tmp_path))
        assert result.returncode == 0 and result.stdout.strip() == f"wrote {tmp_path / 'ftwiz.fish'}", result.stderr
    assert "complete -c ftwiz" in (tmp_path / "ftwiz.fish").read_text(encoding="utf-8")


def test_data_with_no_records_at_all_says_so(tmp_path: Path) -> None:
    # "no usable records in data.jsonl (0 rejected); run `ftwiz data check`", which then found no problem
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.recipe import Recipe

    for name, text in (("blank.jsonl", "\n  \n"), ("header.csv", "instruction,output\n"), ("none.json", "[]")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(FtwizError) as caught:
            prepare_for_training(Recipe(model_name_or_path="demo", dataset=[str(path)]), tokenizer=None)
        assert one_line(caught.value.render()) == (
            f"no records in {path}: nothing to read (an empty file, blank lines, a CSV header alone, or []) "
            "fix: put records in it, or point at the file that holds them")


def test_overwrite_onto_a_folder_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    # `ftwiz recipe new my-recipes --overwrite` where my-recipes/ is a folder: an IsADirectoryError traceback
    folder = tmp_path / "my-recipes"
    folder.mkdir()
    (folder / "kept.yaml").write_text("mine\n", encoding="utf-8")
    err = refused(ftwiz("recipe", "new", str(folder), "--overwrite"))
    assert f"error: {folder} is a folder, and ftwiz writes a file there" in err
    assert "fix: give a file path: a new name, or one inside that folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-recipes"]  # no .partial left beside it
    assert (folder / "kept.yaml").read_text(encoding="utf-8") == "mine\n"

    from ftwiz.core.atomic import atomic_path
    from ftwiz.core.errors import FtwizError

    with pytest.raises(FtwizError, match="is a folder, and ftwiz writes a file there"), \
            atomic_path(folder, overwrite=True) as tmp:
        tmp.write_text("x", encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-recipes"]


def test_recipe_seed_out_of_numpy_range_and_one_export_quant_as_text(tmp_path: Path) -> None:
    from ftwiz.core.recipe import load_recipe

    recipe = tmp_path / "recipe.yaml"
    # seed: -1 passed validation, then training stopped in numpy ("Seed must be between 0 and 2**32 - 1")
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\nseed: -1\n", encoding="utf-8")
    err = refused(ftwiz("recipe", "validate", str(recipe)))
    assert "line 3, 'seed': Input should be greater than or equal to 0 (got -1)" in err
    # export_quant: Q4_K_M (one type, as dataset: takes one file) was "Input should be a valid list"
    recipe.write_text("model_name_or_path: demo\ndataset: demo\nexport_quant: Q4_K_M, Q8_0\n", encoding="utf-8")
    assert load_recipe(recipe).export_quant == ["Q4_K_M", "Q8_0"]
    # lower case, as `ftwiz export --quant q4_k_m` takes it, was "Input should be 'F32', ... (got 'q4_k_m')"
    recipe.write_text("model_name_or_path: demo\ndataset: demo\nexport_quant: [q4_k_m]\n", encoding="utf-8")
    assert load_recipe(recipe).export_quant == ["Q4_K_M"]


@pytest.mark.parametrize(("info", "said"), [
    ("[1, 2]", "dataset_info.json: dataset_info.json must map dataset names to their definitions"),  # AttributeError
    ('{"mine": "mine.jsonl"}', "field 'mine': dataset 'mine' must be an object with a file_name, got 'mine.jsonl'"),
    ('{"mine": {"file_name": "mine.jsonl", "columns": "messages"}}',  # AttributeError: 'str' has no 'items'
     "field 'mine.columns': dataset 'mine' has columns 'messages'; it must map names to names"),
    ('{"mine": {"file_name": "mine.jsonl"}}', "'mien' is neither a dataset in dataset_info.json nor a file in"),
])
def test_a_malformed_dataset_info_json_is_named(tmp_path: Path, info: str, said: str) -> None:
    (tmp_path / "dataset_info.json").write_text(info, encoding="utf-8")
    _with_a_broken_line(tmp_path / "mine.jsonl")
    name = "mien" if "mien" in said else "mine"
    err = refused(ftwiz("data", "check", name, "--dataset-dir", str(tmp_path)))
    assert f"error: {tmp_path / 'dataset_info.json'}" in err and said in err
    if name == "mien":
        assert "fix: did you mean 'mine'? its datasets: mine" in err


def test_a_model_folder_without_tokenizer_or_with_a_cut_weights_file(tmp_path: Path, tiny_qwen2: Path) -> None:
    import shutil

    from ftwiz.core.errors import FtwizError
    from ftwiz.core.models import load_tokenizer
    from ftwiz.core.planner.plan import Plan
    from ftwiz.core.recipe import Recipe
    from ftwiz.core.train.model_setup import load_model

    recipe = Recipe(model_name_or_path=str(tiny_qwen2), dataset=["demo"])
    # config.json and weights only: transformers built a one-token tokenizer, "this tokenizer has no chat template"
    bare = tmp_path / "bare model"
    bare.mkdir()
    shutil.copy(tiny_qwen2 / "config.json", bare)
    with pytest.raises(FtwizError) as caught:
        load_tokenizer(bare, recipe)
    assert one_line(caught.value.render()).startswith(f"{bare} has no tokenizer files (tokenizer.json, ")
    assert "fix: copy the base model's tokenizer files into it" in caught.value.render()
    # a shard cut short: training stopped with safetensors' "invalid header length" traceback, after the run began
    cut = tmp_path / "cut model"
    shutil.copytree(tiny_qwen2, cut)
    weights = next(cut.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(FtwizError) as caught:
        load_model(cut, recipe, Plan.model_construct(method="lora", device="cpu", dtype="fp32"))
    assert one_line(caught.value.render()).startswith(f"{cut}: a weights file of {cut} is damaged: ")
    assert f"`ftwiz export {cut} --check` names the file" in caught.value.render()


def test_an_ftwiz_folder_variable_naming_a_file_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # FTWIZ_RUNS_DIR=~/notes.txt: train stopped with NotADirectoryError; FTWIZ_CACHE_DIR said "choose another --out"
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n", encoding="utf-8")
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.paths import cache_dir, runs_dir

    for var, folder in (("FTWIZ_RUNS_DIR", runs_dir), ("FTWIZ_CACHE_DIR", cache_dir)):
        monkeypatch.setenv(var, str(notes))
        with pytest.raises(FtwizError) as caught:
            folder()
        assert one_line(caught.value.render()).startswith(f"{var}: {notes} is a file, but ftwiz keeps its ")
        assert f"fix: point {var} at a folder (it is created if missing)" in caught.value.render()
        monkeypatch.delenv(var)
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(notes))
    err = refused(ftwiz("models", "list"))
    assert f"error: FTWIZ_DATA_DIR: {notes} is a file, but ftwiz keeps its models registry in a folder there" in err
    assert notes.read_text(encoding="utf-8") == "mine\n"


def test_a_template_that_does_not_compile_or_is_not_utf8_fails_validate(tmp_path: Path) -> None:
    # validate said "ok", then training stopped on it after making the run folder (UTF-16: a traceback)
    (tmp_path / "chat.jinja").write_text("{% for m in messages %}\n{{ m.content }\n{% endfor %}", encoding="utf-8")
    (tmp_path / "utf16.jinja").write_bytes("{{ messages }}".encode("utf-16"))
    recipe = tmp_path / "recipe.yaml"
    cases = {"chat.jinja": "error: chat.jinja, line 2: the chat template does not parse as Jinja: "
                           "unexpected '}' (line 2 in chat.jinja) fix: fix line 2 of the template",
             "utf16.jinja": "error: utf16.jinja: template: utf16.jinja: the chat template file is not UTF-8 text "
                            "(byte 0) fix: re-save it as UTF-8",
             "'{{ messages'": f"error: {recipe}, field 'template': the chat template does not parse as Jinja: "
                              "unexpected end of template"}
    for value, said in cases.items():
        recipe.write_text(f"model_name_or_path: demo\ndataset: [demo]\ntemplate: {value}\n", encoding="utf-8")
        assert said in refused(ftwiz("recipe", "validate", str(recipe), cwd=tmp_path)), value


def test_data_preview_with_a_utf16_template_file(tmp_path: Path) -> None:
    from ftwiz.core.chat_templates.record import resolve_template
    from ftwiz.core.errors import FtwizError

    template = tmp_path / "chat.jinja"
    template.write_bytes("{{ messages }}".encode("utf-16"))  # UnicodeDecodeError traceback in data preview/train
    with pytest.raises(FtwizError) as caught:
        resolve_template(None, str(template))
    assert one_line(caught.value.render()) == (f"{template}: the chat template file is not UTF-8 text (byte 0) "
                                               "fix: re-save it as UTF-8")


def test_export_quant_takes_a_comma_list(tmp_path: Path, tiny_qwen2: Path) -> None:
    # --quant Q8_0,F16 (as export_quant: is written in a recipe) was "unknown quantization 'Q8_0,F16'"
    err = refused(ftwiz("export", str(tiny_qwen2), "--quant", "Q8_0,F16", "--out", str(tmp_path / "one.gguf")))
    assert "--out names one file but 2 quantizations were asked for" in err
