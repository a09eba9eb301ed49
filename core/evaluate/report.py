"""The evaluation report: one pydantic object, written as JSON (for tools) and Markdown (for people).

Everything needed to compare two evaluations is recorded next to the numbers: which models (paths and
engines), which split and how many samples, and the generation settings (greedy, max new tokens, stop
tokens, template hash). Two reports with different settings are not comparable, and the report says so
by carrying them rather than leaving the reader to guess.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.versions import stack_versions
from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # An overflowing perplexity is a real result ("inf"), and must survive a JSON round trip.
    model_config = ConfigDict(ser_json_inf_nan="strings")


class GenerationSettings(_Model):
    decoding: str = "greedy"
    temperature: float = 0.0
    max_new_tokens: int = 128
    stop_tokens: list[str] = Field(default_factory=list)
    chat_template_hash: str | None = None
    system_prompt: str | None = None


class ModelResult(_Model):
    """One model's numbers on the split; ``label`` is base, tuned or gguf."""

    label: str
    engine: str  # hf, hf+adapter, gguf
    path: str
    metrics: dict[str, float] = Field(default_factory=dict)
    loss: float | None = None
    perplexity: float | None = None
    loss_tokens: int = 0
    general_perplexity: float | None = None
    seconds: float = 0.0


class SampleResult(_Model):
    index: int
    prompt: list[dict[str, str]]
    reference: str
    outputs: dict[str, str] = Field(default_factory=dict)

    @property
    def question(self) -> str:
        users = [m["content"] for m in self.prompt if m["role"] == "user"]
        return users[-1] if users else ""


class Forgetting(_Model):
    """Perplexity on general text before and after fine-tuning; a ratio well above 1 means forgetting."""

    source: str
    characters: int
    tokens: int
    base_perplexity: float
    tuned_perplexity: float
    ratio: float


class PreferenceResult(_Model):
    """Held-out pairs scored by DPO's implicit reward ``beta * (log p_tuned - log p_base)`` of each answer.

    ``accuracy``: share of pairs whose chosen answer gets the higher reward (TRL's rewards/accuracies);
    ``margin``: mean chosen-minus-rejected reward (rewards/margins), in nats times beta. The
    ``*_prefers_chosen`` shares compare the raw summed log-probabilities under one model alone.
    """

    stage: str
    beta: float
    pairs: int
    accuracy: float
    margin: float
    rewards_chosen: float
    rewards_rejected: float
    tuned_prefers_chosen: float
    base_prefers_chosen: float
    margins: list[float] = Field(default_factory=list, description="per pair, in sample order")


class EvalReport(_Model):
    target: str
    run_dir: str | None = None
    split: str
    data_file: str
    n_samples: int
    generation: GenerationSettings
    models: list[ModelResult]
    samples: list[SampleResult]
    forgetting: Forgetting | None = None
    stage: str = "sft"
    preference: PreferenceResult | None = None
    notes: list[str] = Field(default_factory=list, description="why a figure is left out")
    gguf_agreement: float | None = Field(None, description="share of samples where GGUF and HF answers are equal")
    warnings: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=stack_versions)
    created: float = Field(default_factory=time.time)

    def model(self, label: str) -> ModelResult | None:
        return next((m for m in self.models if m.label == label), None)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    return f"{value:.{digits}f}"


HELD_OUT_SPLITS = ("test", "validation")
METRIC_ROWS = (("loss", "loss (answers)"), ("perplexity", "perplexity"), ("rouge_l", "ROUGE-L"),
               ("bleu", "BLEU"), ("exact_match", "exact match"), ("json_validity", "valid JSON"),
               ("general_perplexity", "general-text perplexity"))


def metric_title(report: EvalReport, key: str, title: str) -> str:
    """The row's name; without answers (raw text, pt) the loss is over the text, not answers, and "held-out"
    only when the split is one training did not see (test, validation): --split train or a --data file may be
    training text."""
    if key == "loss" and not report.samples:
        return "loss (held-out text)" if report.split in HELD_OUT_SPLITS else "loss (text)"
    return title


def metric_value(result: ModelResult, key: str) -> float | None:
    if key in ("loss", "perplexity", "general_perplexity"):
        return getattr(result, key)
    return result.metrics.get(key)


def _cell(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("|", "\\|") or "(empty)"


def render_markdown(report: EvalReport, *, max_rows: int = 20) -> str:
    """The human report: metrics side by side, settings, forgetting, and the first answers compared."""
    labels = [m.label for m in report.models]
    lines = [f"# Evaluation of {report.target}", ""]
    lines.append(f"Split `{report.split}` ({report.data_file}), {report.n_samples} samples.")
    lines.append("")
    lines.append("| metric | " + " | ".join(labels) + " |")
    lines.append("|---|" + "---|" * len(labels))
    for key, title in METRIC_ROWS:
        values = [metric_value(m, key) for m in report.models]
        if all(v is None for v in values):
            continue
        digits = 2 if key in ("bleu", "perplexity", "general_perplexity") else 3
        lines.append(f"| {metric_title(report, key, title)} | " + " | ".join(_fmt(v, digits) for v in values) + " |")
    lines.append("")
    lines.append("Models: " + "; ".join(f"**{m.label}** = {m.engine} `{m.path}`" for m in report.models) + ".")
    lines.append("")
    if report.preference is not None:
        lines += preference_lines(report.preference) + [""]
    for note in report.notes:
        lines += [f"Note: {note}.", ""]
    if report.gguf_agreement is not None:
        lines.append(f"GGUF vs Hugging Face: {report.gguf_agreement:.0%} of answers identical.")
        lines.append("")
    if report.forgetting:
        f = report.forgetting
        lines.append(f"Forgetting check on {f.source} ({f.tokens} tokens): perplexity {f.base_perplexity:.2f} "
                     f"before, {f.tuned_perplexity:.2f} after, ratio **{f.ratio:.2f}** "
                     "(1.0 = nothing forgotten; much above 1 = general ability lost).")
        lines.append("")
    g = report.generation
    stops = ", ".join(f"`{s}`" for s in g.stop_tokens) or "none"
    lines.append(f"Generation: {g.decoding}, temperature {g.temperature}, at most {g.max_new_tokens} new tokens, "
                 f"stop tokens {stops}, chat template {g.chat_template_hash or '-'}.")
    lines.append("")
    if "loss_png" in report.files:
        lines += ["## Loss curves", "", f"![train and eval loss]({Path(report.files['loss_png']).name})", ""]
    if report.samples:  # none for raw text (pt): perplexity only
        lines += ["## Answers", "", "| # | prompt | reference | " + " | ".join(labels) + " |",
                  "|---|---|---|" + "---|" * len(labels)]
    for sample in report.samples[:max_rows]:
        outs = " | ".join(_cell(sample.outputs.get(label, "")) for label in labels)
        lines.append(f"| {sample.index} | {_cell(sample.question, 80)} | {_cell(sample.reference)} | {outs} |")
    if len(report.samples) > max_rows:
        lines += ["", f"({len(report.samples) - max_rows} more in report.json)"]
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def preference_lines(p: PreferenceResult) -> list[str]:
    """The preference figures in words (report.md and the CLI summary)."""
    return [f"Preference ({p.stage}, beta {p.beta:g}) on {p.pairs} held-out pairs: accuracy **{p.accuracy:.0%}** "
            f"(chosen answer rewarded above the rejected one), reward margin **{p.margin:+.4f}** "
            f"(chosen {p.rewards_chosen:+.4f}, rejected {p.rewards_rejected:+.4f}; reward = beta x (log p tuned "
            "- log p base) of the answer, the base being the reference model).",
            f"By log-probability alone the chosen answer is the likelier one for the tuned model in "
            f"{p.tuned_prefers_chosen:.0%} of pairs, for the base in {p.base_prefers_chosen:.0%}."]


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """report.json and report.md in ``out_dir`` (atomically; a re-run replaces the previous report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    report.files.update({"report_json": str(json_path), "report_md": str(md_path)})
    write_text_atomic(json_path, report.model_dump_json(indent=2), overwrite=True)
    write_text_atomic(md_path, render_markdown(report), overwrite=True)
    return {"report_json": json_path, "report_md": md_path}
