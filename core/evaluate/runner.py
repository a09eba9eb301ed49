"""``evaluate()``: held-out metrics for a fine-tuned model next to its base, and optionally its GGUF.

Run it as ``ftwiz eval RUN [--gguf runs/RUN/export/model-F16.gguf]``. For every model the same prompts
(the split's conversations up to their last answer, rendered by the run's chat template) are answered
greedily, the answers are scored against the references (ROUGE-L, BLEU, exact match, JSON validity), and
the loss of the reference answers gives perplexity. A forgetting check measures perplexity on general
text before and after fine-tuning. The report (JSON + Markdown) and a PNG of the training curves go to
the run's ``eval/`` folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.data.pair_view import common_prefix_length
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.evaluate import metrics
from ftwiz.core.evaluate.backends import (
    Engine,
    GGUFEngine,
    HFEngine,
    attach_adapter,
    check_tokenizer_fits,
    load_gguf,
    load_hf_model,
    load_tokenizer,
    stop_token_ids,
)
from ftwiz.core.evaluate.cutoff import hold_to_cutoff
from ftwiz.core.evaluate.plot import loss_curves, plot_loss
from ftwiz.core.evaluate.prompts import Renderer, renderer_for_gguf, renderer_for_tokenizer, served_through
from ftwiz.core.evaluate.report import (
    EvalReport,
    Forgetting,
    GenerationSettings,
    ModelResult,
    PreferenceResult,
    SampleResult,
    write_report,
)
from ftwiz.core.evaluate.samples import EvalSample, as_trained, load_samples, split_path
from ftwiz.core.evaluate.targets import ModelSpec, Target, resolve_target
from ftwiz.core.events import EventBus, Message, Progress

# General text for the forgetting check: long enough for a stable perplexity on a real model, short
# enough that it costs seconds, not minutes. A user file is cut at the same length.
FORGETTING_CHARS = 4000
FORGETTING_BLOCK = 256


@dataclass
class Contender:
    """A loaded model with the renderer that writes its prompts."""

    label: str
    spec: ModelSpec
    engine: Engine
    renderer: Renderer


def _emit(events: EventBus | None, event: Any) -> None:
    if events is not None:
        events.emit(event)




def _is_demo_base(path: str | Path | None) -> bool:
    """Whether ``path`` is the demo base model, which was pre-trained on the built-in general-text corpus."""
    from ftwiz.core.tiny.demo import demo_base_model_dir

    try:
        return path is not None and Path(path).resolve() == demo_base_model_dir().resolve()
    except OSError:
        return False


def general_text(source: str | Path | None) -> tuple[str, str]:
    """The forgetting-check text and a name for it: a user file, or a slice of the shipped corpus."""
    if source is None:
        from ftwiz.core.tiny import corpus_text

        text, name = corpus_text(), "the built-in general-text sample (ftwiz/core/tiny/corpus.txt)"
    else:
        path = Path(source)
        if not path.is_file():
            raise FtwizError(f"{path} {'is a folder' if path.is_dir() else 'does not exist'}", where=Location(file=path),
                             fix="give a UTF-8 text file of general writing for the forgetting check")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FtwizError(f"{path} is not UTF-8 text", where=Location(file=path),
                             fix="save it as UTF-8 plain text") from None
        name = str(path)
    if len(text) > FORGETTING_CHARS:
        cut = text.rfind("\n", 0, FORGETTING_CHARS)
        text = text[: cut if cut > FORGETTING_CHARS // 2 else FORGETTING_CHARS]
    if not text.strip():
        raise FtwizError("the forgetting-check text is empty", where=Location(file=str(source)),
                         fix="give a file with a few paragraphs of general text")
    return text, name


def text_loss(engine: Engine, text: str, *, block: int = FORGETTING_BLOCK) -> tuple[float, int]:
    """Summed token loss of plain text, scored in independent blocks so any context length works."""
    ids = engine.tokenize(text)
    block = max(8, min(block, engine.context_length))
    total, count = 0.0, 0
    for start in range(0, len(ids), block):
        piece = ids[start : start + block]
        loss, n = engine.nll(piece, 1)
        total += loss
        count += n
    return total, count


def _check_gguf_vocab(engine: GGUFEngine, tokenizer: Any) -> None:
    """A GGUF whose vocabulary is smaller than the run's tokenizer was exported from another model."""
    if tokenizer is not None and len(tokenizer) > engine.n_vocab:
        raise FtwizError(
            f"the GGUF has {engine.n_vocab} tokens but the run's tokenizer has {len(tokenizer)}: "
            "it was exported from another model", where=Location(file=engine.path),
            fix="export this run with `ftwiz export` and evaluate that file")


def _load_contenders(target: Target, gguf: Path | None, *, n_ctx: int) -> tuple[list[Contender], list[str]]:
    """Load base, tuned and (optionally) an extra GGUF, sharing one base model between base and adapter."""
    warnings: list[str] = []
    if target.method == "qlora" and target.tuned.kind == "adapter":
        warnings.append("the adapter was trained on a 4-bit base and is evaluated on the 16/32-bit base, as "
                        "merge and export use it; expect small differences from training-time numbers")
    tokenizer = load_tokenizer(target.tokenizer_dir) if target.tokenizer_dir else None
    template = {"template": target.chat_template, "enable_thinking": target.enable_thinking}
    renderer = renderer_for_tokenizer(tokenizer, target.template_name, **template) if tokenizer is not None else None
    contenders: list[Contender] = []
    tuned, base = target.tuned, target.base

    def hf_engine(model: Any, tok: Any, spec_path: Path, tok_path: Path, adapter_off: bool = False) -> HFEngine:
        engine = HFEngine(model=model, tokenizer=tok, path=str(spec_path), kind="hf", adapter_off=adapter_off)
        check_tokenizer_fits(tok, engine.n_vocab, tokenizer_path=tok_path, model_path=spec_path)
        return engine

    shared_base = None
    if tuned.kind == "adapter":
        assert tokenizer is not None and renderer is not None and tuned.base_path is not None
        model = attach_adapter(load_hf_model(tuned.base_path), tuned.path)
        tuned_engine = hf_engine(model, tokenizer, tuned.path, target.tokenizer_dir)
        tuned_engine.kind = "hf+adapter"
        if base is not None and base.path.resolve() == tuned.base_path.resolve():
            shared_base = hf_engine(model, tokenizer, base.path, target.tokenizer_dir, adapter_off=True)
    elif tuned.kind == "hf":
        assert tokenizer is not None and renderer is not None
        tuned_engine = hf_engine(load_hf_model(tuned.path), tokenizer, tuned.path, target.tokenizer_dir)
    else:
        tuned_engine = load_gguf(tuned.path, n_ctx=n_ctx)
        _check_gguf_vocab(tuned_engine, tokenizer)
        if renderer is None:
            renderer = renderer_for_gguf(tuned_engine.llm, str(tuned.path))
    if base is not None:
        if shared_base is not None:
            contenders.append(Contender("base", base, shared_base, renderer))
        else:
            base_tok = load_tokenizer(base.path)
            base_renderer = renderer_for_tokenizer(base_tok, target.template_name, **template)
            engine = hf_engine(load_hf_model(base.path), base_tok, base.path, base.path)
            contenders.append(Contender("base", base, engine, base_renderer))
    # a GGUF is prompted as served (the leading space of core/export/space_prefix.py); HF engines as trained
    contenders.append(Contender("tuned", tuned, tuned_engine, served_through(renderer, getattr(tuned_engine, "llm", None))))
    if gguf is not None:
        gguf_engine = load_gguf(gguf, n_ctx=n_ctx)
        _check_gguf_vocab(gguf_engine, tokenizer)
        contenders.append(Contender("gguf", ModelSpec("gguf", gguf.resolve()), gguf_engine,
                                    served_through(renderer, gguf_engine.llm)))
    return contenders, warnings


def _answer_all(contender: Contender, samples: list[EvalSample], *, max_new_tokens: int, cutoff: int,
                stop_ids: set[int], events: EventBus | None, done: int, total: int) -> tuple[list[str], float, int]:
    from ftwiz.core.evaluate.answer_end import cut_at_text_stop, text_stops

    engine, renderer = contender.engine, contender.renderer
    ends = text_stops(renderer, engine)  # an end of turn the vocabulary only has as text: cut the answer there
    outputs: list[str] = []
    loss_sum, loss_tokens = 0.0, 0
    for i, sample in enumerate(samples):
        prompt_ids = engine.tokenize(renderer.render(sample.prompt, generation_prompt=True, tools=sample.tools))
        answer_ids = engine.greedy(prompt_ids, max_new_tokens, stop_ids)
        outputs.append(cut_at_text_stop(engine.detokenize(answer_ids), ends).strip())
        full_ids = engine.tokenize(renderer.render(sample.conversation, generation_prompt=False, tools=sample.tools))
        full_ids = full_ids[: min(cutoff, engine.context_length)]
        loss, n = engine.nll(full_ids, common_prefix_length(prompt_ids, full_ids))
        loss_sum += loss
        loss_tokens += n
        _emit(events, Progress(stage="eval", done=done + i + 1, total=total,
                               message=f"{contender.label}: sample {i + 1}/{len(samples)}"))
    return outputs, loss_sum, loss_tokens


def _preference(target: Target, contenders: list[Contender], samples: list[EvalSample], results: list[ModelResult],
                warnings: list[str], events: EventBus | None) -> tuple[PreferenceResult | None, list[str]]:
    """Preference accuracy and reward margin for dpo/orpo/kto runs; the perplexities are dropped, with why."""
    from ftwiz.core.evaluate.preference import PREFERENCE_STAGES, WHY_NO_PERPLEXITY, preference_metrics

    if target.stage not in PREFERENCE_STAGES:
        return None, []
    for result in results:
        result.perplexity = None
    notes = [WHY_NO_PERPLEXITY.format(stage=target.stage)]
    tuned = next(c for c in contenders if c.label == "tuned")
    base = next((c for c in contenders if c.label == "base"), None)
    if base is None:
        warnings.append("no base model to serve as the reference, so no preference accuracy or reward margin")
        return None, notes
    if not any(s.rejected is not None for s in samples):
        warnings.append("the evaluated data has no rejected answers, so no preference accuracy or reward margin")
        return None, notes

    def progress(done: int, total: int) -> None:
        _emit(events, Progress(stage="eval", done=done, total=total, message=f"preference pair {done}/{total}"))

    result = preference_metrics(tuned.engine, base.engine, tuned.renderer, samples, beta=target.pref_beta,
                                stage=target.stage, cutoff=target.cutoff_len, progress=progress)
    return result, notes


def _default_out_dir(target: Target) -> Path:
    from ftwiz.core.paths import data_dir, safe_name

    if target.run is not None:
        return target.run.eval
    return data_dir() / "eval" / safe_name(target.tuned.path.stem if target.tuned.kind == "gguf"
                                           else target.tuned.path.name)


def evaluate(target: str | Path, *, base: str | Path | None = None, split: str = "test",
             max_samples: int | None = None, max_new_tokens: int = 128, forgetting_text: str | Path | None = None,
             events: EventBus | None = None, gguf: str | Path | None = None, data: str | Path | None = None,
             out_dir: str | Path | None = None, forgetting: bool = True, write: bool = True) -> EvalReport:
    """Evaluate ``target`` (run, HF model/adapter folder, or GGUF) on a held-out split; write the report.

    ``gguf`` adds an exported file as a third contender answering the same prompts, and the report says
    how many of its answers equal the Hugging Face model's. ``data`` evaluates on a JSONL file instead
    of the run's split (required for a model outside a run).
    """
    if max_new_tokens < 1:
        raise FtwizError("max_new_tokens must be at least 1", where=Location(field="max_new_tokens"),
                         fix="e.g. --max-new-tokens 128")
    if max_samples is not None and max_samples < 1:
        raise FtwizError("max_samples must be at least 1", where=Location(field="max_samples"),
                         fix="omit --max-samples to use the whole split")
    resolved = resolve_target(target, base)
    if data is not None:
        data_file = Path(data)
    elif resolved.run is not None:
        data_file = split_path(resolved.run.data, split)
    else:
        raise FtwizError(f"{target} is not a run, so there is no held-out split to evaluate on",
                         fix="pass --data FILE (JSONL of {\"messages\": [...]} or {\"prompt\", \"reference\"})")
    from ftwiz.core.evaluate import pretrain

    documents = pretrain.load_documents(data_file, max_samples=max_samples)  # raw text (pt): perplexity only
    samples = [] if documents is not None else load_samples(data_file, system=resolved.system,
                                                             max_samples=max_samples)
    gguf_path = Path(gguf) if gguf is not None else None
    n_ctx = max(512, min(resolved.cutoff_len + max_new_tokens, 8192))

    started = time.time()
    contenders, warnings = _load_contenders(resolved, gguf_path, n_ctx=n_ctx)
    reference_engine = next(c for c in contenders if c.label == "tuned")
    samples = as_trained(samples, reference_engine.renderer)  # thinking off: the answers training learned
    samples, held = hold_to_cutoff(samples, reference_engine.engine, reference_engine.renderer,  # as trained
                                   cutoff=resolved.cutoff_len, overlength=resolved.overlength)
    warnings += [held] if held else []
    _emit(events, Message(text=f"evaluating {len(documents or samples)} "
                               f"{'documents' if documents is not None else 'samples'} on {len(contenders)} models"))
    eos = getattr(getattr(reference_engine.engine, "tokenizer", None), "eos_token", None)
    stop_texts = [reference_engine.renderer.eos_token, eos]
    total = len(documents or samples) * len(contenders)
    results: list[ModelResult] = []
    answers: dict[str, list[str]] = {}
    stop_names: list[str] = []
    for n, contender in enumerate(contenders):
        t0 = time.time()
        stops = stop_token_ids(contender.engine, stop_texts)
        stop_names += [s for s in stops.values() if s not in stop_names]
        if documents is not None:
            outputs, (loss_sum, loss_tokens) = [], pretrain.documents_loss(
                contender.engine, documents, cutoff=resolved.cutoff_len,
                eos_token=getattr(getattr(contender.engine, "tokenizer", None), "eos_token", None)
                or contender.renderer.eos_token,
                progress=lambda i, k, n=n, label=contender.label: _emit(events, Progress(
                    stage="eval", done=n * k + i, total=total, message=f"{label}: document {i}/{k}")))
        else:
            outputs, loss_sum, loss_tokens = _answer_all(
                contender, samples, max_new_tokens=max_new_tokens, cutoff=resolved.cutoff_len,
                stop_ids=set(stops), events=events, done=n * len(samples), total=total)
        answers[contender.label] = outputs
        mean_loss = loss_sum / loss_tokens if loss_tokens else None
        results.append(ModelResult(
            label=contender.label, engine=contender.engine.kind, path=contender.engine.path,
            metrics=metrics.generation_metrics(outputs, [s.reference for s in samples]) if samples else {},
            loss=mean_loss, perplexity=metrics.perplexity(mean_loss) if mean_loss is not None else None,
            loss_tokens=loss_tokens, seconds=round(time.time() - t0, 3)))

    preference, notes = _preference(resolved, contenders, samples, results, warnings, events)
    if documents is not None:
        notes.append(pretrain.note(len(documents), results[-1].loss_tokens, resolved.cutoff_len,
                                   held_out=data is None and split in ("test", "validation")))

    forgetting_result = None
    if forgetting and any(c.label == "base" for c in contenders):
        text, source = general_text(forgetting_text)
        for contender, result in zip(contenders, results, strict=True):
            loss, count = text_loss(contender.engine, text)
            result.general_perplexity = metrics.perplexity(loss / count) if count else None
        base_r, tuned_r = results[0], next(r for r in results if r.label == "tuned")
        if base_r.general_perplexity and tuned_r.general_perplexity:
            forgetting_result = Forgetting(
                source=source, characters=len(text), tokens=len(contenders[0].engine.tokenize(text)),
                base_perplexity=base_r.general_perplexity, tuned_perplexity=tuned_r.general_perplexity,
                ratio=tuned_r.general_perplexity / base_r.general_perplexity)
        if forgetting_text is None and _is_demo_base(contenders[0].engine.path):
            warnings.append("the forgetting check's built-in text is what the demo model was pre-trained on, so it "
                            "shows little forgetting here; pass --forgetting FILE with general text it never saw")

    agreement = None
    if "gguf" in answers:
        pairs = list(zip(answers["tuned"], answers["gguf"], strict=True))
        agreement = sum(a == b for a, b in pairs) / len(pairs)
        if agreement < 1.0:
            warnings.append(f"the GGUF's greedy answers differ from the Hugging Face model's on "
                            f"{sum(a != b for a, b in pairs)} of {len(pairs)} prompts (expected only after "
                            "quantization; with F16/F32 it points at the export)")

    report = EvalReport(
        target=str(target), run_dir=str(resolved.run.root) if resolved.run else None, split=split if data is None
        else "file", data_file=str(data_file), n_samples=len(documents or samples),
        generation=GenerationSettings(max_new_tokens=max_new_tokens, stop_tokens=stop_names,
                                      chat_template_hash=reference_engine.renderer.hash, system_prompt=resolved.system),
        models=results,
        samples=[SampleResult(index=s.index, prompt=s.prompt, reference=s.reference,
                              outputs={label: outs[i] for label, outs in answers.items()})
                 for i, s in enumerate(samples)],
        forgetting=forgetting_result, gguf_agreement=agreement, warnings=warnings, stage=resolved.stage,
        preference=preference, notes=notes)
    if write:
        out = Path(out_dir) if out_dir is not None else _default_out_dir(resolved)
        if resolved.run is not None:
            curves = loss_curves(resolved.run.events)
            if curves.empty:
                report.warnings.append("events.jsonl has no step or eval events, so there is no loss plot")
            else:
                kind = "" if resolved.stage == "sft" else f"{resolved.stage} "
                png = plot_loss(curves, out / "loss.png", title=f"{resolved.run.name}: {kind}loss")
                report.files["loss_png"] = str(png)
        write_report(report, out)
    _emit(events, Message(text=f"evaluation finished in {time.time() - started:.1f} s"))
    return report


__all__ = ["GGUFEngine", "HFEngine", "evaluate", "general_text", "text_loss"]
