"""``evaluate()`` on a real trained tiny run: report files, base vs tuned, engines checked against transformers."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.evaluate import metrics
from ftwiz.core.evaluate.runner import evaluate
from test_eval_rundir import eval_run, eval_run_template  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_evaluate_run_writes_report_plot_and_compares_base_with_tuned(eval_run: Path) -> None:  # noqa: F811
    from ftwiz.core.events import EventBus, Progress

    seen: list = []
    report = evaluate(eval_run, max_new_tokens=24, events=EventBus([seen.append]))
    files = {name: Path(path) for name, path in report.files.items()}
    assert files["report_md"] == eval_run / "eval" / "report.md" and files["report_md"].is_file()
    assert (eval_run / "eval" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((eval_run / "eval" / "report.json").read_text())
    assert saved["n_samples"] == 8 and [m["label"] for m in saved["models"]] == ["base", "tuned"]

    base, tuned = report.model("base"), report.model("tuned")
    assert tuned.engine == "hf+adapter" and base.engine == "hf"
    # Training on pirate answers must make the held-out pirate answers far more likely.
    assert tuned.loss < base.loss - 0.5
    assert tuned.perplexity == pytest.approx(math.exp(tuned.loss))
    assert tuned.loss_tokens > 8 * 5
    # The reported metrics are the metrics of the answers the report shows.
    refs = [s.reference for s in report.samples]
    outs = [s.outputs["tuned"] for s in report.samples]
    assert tuned.metrics["rouge_l"] == pytest.approx(metrics.rouge_l(outs, refs))
    assert tuned.metrics["bleu"] == pytest.approx(metrics.bleu(outs, refs))
    assert tuned.metrics["rouge_l"] > base.metrics["rouge_l"]
    # Settings that make two reports comparable are recorded.
    assert report.generation.decoding == "greedy" and report.generation.max_new_tokens == 24
    assert "<|im_end|>" in report.generation.stop_tokens
    f = report.forgetting
    assert f is not None and f.ratio == pytest.approx(f.tuned_perplexity / f.base_perplexity)
    assert f.tokens > 500 and "corpus.txt" in f.source
    progress = [e for e in seen if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == 16
    md = files["report_md"].read_text()
    assert "| metric | base | tuned |" in md and "loss.png" in md


def test_greedy_loop_and_loss_agree_with_transformers(eval_run: Path) -> None:  # noqa: F811
    """Our engine's greedy answer equals model.generate(do_sample=False); its loss equals the model's own."""
    import torch
    from ftwiz.core.evaluate.backends import HFEngine, attach_adapter, load_hf_model, load_tokenizer
    from transformers import GenerationConfig

    card = json.loads((eval_run / "run_card.json").read_text())
    tokenizer = load_tokenizer(eval_run / "adapter")
    model = attach_adapter(load_hf_model(Path(card["base_model"])), eval_run / "adapter")
    engine = HFEngine(model=model, tokenizer=tokenizer, path="adapter")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me about the river."}],
                                        tokenize=False, add_generation_prompt=True)
    ids = engine.tokenize(text)
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ours = engine.greedy(ids, 20, {stop})
    with torch.no_grad():
        theirs = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                generation_config=GenerationConfig(do_sample=False, max_new_tokens=20,
                                                                   eos_token_id=stop, pad_token_id=stop))
    theirs_new = [t for t in theirs[0, len(ids):].tolist() if t != stop]
    assert ours == theirs_new and len(ours) > 0

    full = ids + ours
    total, n = engine.nll(full, len(ids))
    labels = torch.tensor([[-100] * len(ids) + ours])
    with torch.no_grad():
        hf_loss = model(input_ids=torch.tensor([full]), labels=labels).loss.item()
    assert n == len(ours) and total / n == pytest.approx(hf_loss, rel=1e-4)
    # The base (adapter disabled) scores the same tokens differently.
    base_engine = HFEngine(model=model, tokenizer=tokenizer, path="base", adapter_off=True)
    assert base_engine.nll(full, len(ids))[0] != pytest.approx(total, rel=1e-3)


def test_max_samples_data_file_and_user_forgetting_text(eval_run: Path, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Tell me about the {w}.",
                                        "reference": f"Ahoy! The {w} be a fine thing, matey. Arr!"}) + "\n"
                            for w in ("moon", "ship", "island")))
    general = tmp_path / "general.txt"
    general.write_text("The train leaves the station at noon. " * 40)
    report = evaluate(eval_run, data=data, max_samples=2, max_new_tokens=8, forgetting_text=general,
                      out_dir=tmp_path / "out")
    assert report.n_samples == 2 and report.split == "file"
    assert [s.prompt[-1]["content"] for s in report.samples] == ["Tell me about the moon.", "Tell me about the ship."]
    assert report.forgetting.source == str(general)
    assert (tmp_path / "out" / "report.json").is_file() and not (eval_run / "eval").exists()


def test_missing_and_empty_splits_are_user_errors(eval_run: Path) -> None:  # noqa: F811
    (eval_run / "data" / "test.jsonl").unlink()
    with pytest.raises(FtwizError) as info:
        evaluate(eval_run, write=False)
    assert "no 'test' split" in info.value.what and "--split validation" in info.value.fix
    (eval_run / "data" / "test.jsonl").write_text("\n")
    with pytest.raises(FtwizError, match="is empty"):
        evaluate(eval_run, write=False)


def test_tokenizer_of_another_model_is_refused(eval_run: Path) -> None:  # noqa: F811
    """A tokenizer with ids past the embedding table (tokens added without resizing) is caught up front."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(eval_run / "adapter"))
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(600)])
    tokenizer.save_pretrained(str(eval_run / "adapter"))
    with pytest.raises(FtwizError) as info:
        evaluate(eval_run, write=False, max_samples=1)
    assert "different models" in info.value.what and str(len(tokenizer)) in info.value.what
    assert "own tokenizer" in info.value.fix


def test_adapter_on_the_wrong_base_is_refused(eval_run: Path, tiny_qwen3: Path) -> None:  # noqa: F811
    card = json.loads((eval_run / "run_card.json").read_text())
    card["base_model"] = str(tiny_qwen3)
    (eval_run / "run_card.json").write_text(json.dumps(card))
    with pytest.raises(FtwizError, match="adapter does not fit this base model"):
        evaluate(eval_run, write=False, max_samples=1)


def test_a_model_folder_with_data_and_base(eval_run: Path, tmp_path: Path, tiny_qwen2: Path) -> None:  # noqa: F811
    """A merged model outside any run: answers from --data, compared with --base when given."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = tmp_path / "merged"
    base_model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2))
    PeftModel.from_pretrained(base_model, str(eval_run / "adapter")).merge_and_unload().save_pretrained(str(merged))
    AutoTokenizer.from_pretrained(str(eval_run / "adapter")).save_pretrained(str(merged))
    data = eval_run / "data" / "test.jsonl"
    alone = evaluate(merged, data=data, max_samples=2, max_new_tokens=12, out_dir=tmp_path / "alone")
    assert [m.label for m in alone.models] == ["tuned"] and alone.forgetting is None
    compared = evaluate(merged, data=data, base=tiny_qwen2, max_samples=2, max_new_tokens=12, write=False)
    assert [m.label for m in compared.models] == ["base", "tuned"] and compared.forgetting is not None
    # Merging is exact in float32: the merged folder answers like the run's adapter does.
    from_run = evaluate(eval_run, max_samples=2, max_new_tokens=12, write=False, forgetting=False)
    assert [s.outputs["tuned"] for s in compared.samples] == [s.outputs["tuned"] for s in from_run.samples]
    assert compared.model("tuned").loss == pytest.approx(from_run.model("tuned").loss, rel=1e-4)


def test_a_model_outside_a_run_needs_data(tiny_qwen2: Path) -> None:
    with pytest.raises(FtwizError, match="not a run") as info:
        evaluate(tiny_qwen2, write=False)
    assert "--data" in info.value.fix
    with pytest.raises(FtwizError, match="no ftwiz run found"):
        evaluate("no-such-run", write=False)


def test_gguf_and_hf_give_identical_greedy_answers(eval_run: Path, tmp_path: Path) -> None:  # noqa: F811
    """The exported F16 GGUF answers every held-out prompt exactly as the HF model does, and scores alike."""
    convert = pytest.importorskip("ftwiz.core.export.convert")
    merge = pytest.importorskip("ftwiz.core.export.merge")
    card = json.loads((eval_run / "run_card.json").read_text())
    merge.merge_adapter(eval_run / "adapter", tmp_path / "merged", base_dir=Path(card["base_model"]))
    gguf = eval_run / "export" / "eval-run-F16.gguf"
    gguf.parent.mkdir(parents=True, exist_ok=True)
    convert.convert_to_gguf(tmp_path / "merged", gguf, out_type="F16")

    report = evaluate(eval_run, gguf=gguf, max_new_tokens=32, forgetting=False)
    assert [m.label for m in report.models] == ["base", "tuned", "gguf"]
    pairs = [(s.outputs["tuned"], s.outputs["gguf"]) for s in report.samples]
    assert all(hf == gg for hf, gg in pairs), pairs
    assert any(hf for hf, _ in pairs), "the tuned model said nothing: the comparison would prove little"
    assert report.gguf_agreement == 1.0 and not report.warnings
    tuned, exported = report.model("tuned"), report.model("gguf")
    # The same answer tokens are scored by both engines; F16 weights move the loss only slightly.
    assert exported.loss_tokens == tuned.loss_tokens
    assert exported.loss == pytest.approx(tuned.loss, rel=1e-2)
    assert "GGUF vs Hugging Face: 100% of answers identical" in (eval_run / "eval" / "report.md").read_text()


def test_gguf_evaluated_on_its_own_uses_the_run_above_it(eval_run: Path, tmp_path: Path) -> None:  # noqa: F811
    """``ftwiz eval runs/x/export/model.gguf``: the run's split, base model and eval/ folder are found."""
    convert = pytest.importorskip("ftwiz.core.export.convert")
    merge = pytest.importorskip("ftwiz.core.export.merge")
    card = json.loads((eval_run / "run_card.json").read_text())
    merge.merge_adapter(eval_run / "adapter", tmp_path / "merged", base_dir=Path(card["base_model"]))
    gguf = eval_run / "export" / "eval-run-F16.gguf"
    gguf.parent.mkdir(parents=True, exist_ok=True)
    convert.convert_to_gguf(tmp_path / "merged", gguf, out_type="F16")
    report = evaluate(gguf, max_samples=2, max_new_tokens=12)
    assert [(m.label, m.engine) for m in report.models] == [("base", "hf"), ("tuned", "gguf")]
    assert report.run_dir == str(eval_run.resolve()) and (eval_run / "eval" / "report.json").is_file()
    assert report.model("tuned").loss < report.model("base").loss
    # Outside any run the GGUF's own chat template (rendered with Jinja) writes the prompts: same answers.
    alone = tmp_path / "alone.gguf"
    shutil.copyfile(gguf, alone)
    solo = evaluate(alone, data=eval_run / "data" / "test.jsonl", max_samples=2, max_new_tokens=12, write=False)
    assert [m.label for m in solo.models] == ["tuned"] and solo.run_dir is None
    assert [s.outputs["tuned"] for s in solo.samples] == [s.outputs["tuned"] for s in report.samples]
    assert solo.generation.chat_template_hash == report.generation.chat_template_hash


def test_llama3_template_gguf_parity_with_bos_in_the_template(tmp_path: Path, tiny_llama: Path) -> None:
    """Llama-3: BOS comes from the template, so neither engine may add a second one; answers still match."""
    convert = pytest.importorskip("ftwiz.core.export.convert")
    merge = pytest.importorskip("ftwiz.core.export.merge")
    from test_eval_rundir import build_trained_run, one_torch_thread

    with one_torch_thread():
        run = build_trained_run(tmp_path / "runs", tiny_llama, name="llama-run", steps=30)
        merge.merge_adapter(run / "adapter", tmp_path / "merged", base_dir=tiny_llama)
        gguf = run / "export" / "llama-run-F16.gguf"
        gguf.parent.mkdir(parents=True)
        convert.convert_to_gguf(tmp_path / "merged", gguf, out_type="F16")
        report = evaluate(run, gguf=gguf, max_samples=4, max_new_tokens=24, forgetting=False, write=False)
    assert report.generation.stop_tokens[0] == "<|eot_id|>"
    assert report.gguf_agreement == 1.0, [(s.outputs["tuned"], s.outputs["gguf"]) for s in report.samples]
    assert all(s.outputs["tuned"].startswith("Ahoy") for s in report.samples)
    assert report.model("gguf").loss == pytest.approx(report.model("tuned").loss, rel=1e-2)
