"""Run or model in, verified GGUF files out: merge (when needed), convert, quantize, verify.

The one entry point the CLI verb, the wizard and the demo call. Given a run directory it finds
everything from the run alone: a LoRA/QLoRA run's adapter is merged into ``run.merged`` (reused when it
is newer than the adapter), a full fine-tune's ``run.model`` is used directly, and GGUF files land in
``run.export/<run-name>-<quant>.gguf``. K-quants are written straight from the safetensors, quantized by
ggml as llama.cpp's quantizer would (:mod:`ftwiz.core.export.kquant`: no intermediate, memory bounded by a
few pieces); only where this llama-cpp-python build lacks ggml's quantizer are they made from an F16
intermediate (deleted afterwards unless F16 was asked for too) by ``llama_model_quantize``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.atomic import scratch_dir
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.convert import OUT_TYPES, convert_to_gguf, kquant_fallback_note
from ftwiz.core.export.kquant import direct_quant_available, needs_f16_intermediate
from ftwiz.core.export.quantize import quantize_gguf
from ftwiz.core.export.verify_identity import forget_verdict
from ftwiz.core.export.verify_record import write_verify_record
from ftwiz.core.export.verify_report import VerifyReport
from ftwiz.core.quant_types import QUANT_NAMES, estimated_bytes
from ftwiz.core.trained_context import SYSTEM_PROMPT, run_context_keys, run_of_model_folder

ALL_QUANTS = QUANT_NAMES  # the converter's types, then the quantizer's


@dataclass
class ExportResult:
    """What an export wrote: the GGUF paths, one verify report per GGUF when verified, and whether the run's
    adapter was merged first. A plain dataclass: ``ftwiz export`` imports no pydantic (start-up time)."""

    model_dir: str
    gguf_paths: list[str] = field(default_factory=list)
    reports: list[VerifyReport] = field(default_factory=list)
    merged: bool = False
    notes: list[str] = field(default_factory=list)  # what the user should know about the files (type fallbacks,
    # weights beyond float16's range written as inf: core/export/f16_range.py)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)


def _newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)


def _emit(events, done: float, total: float, message: str) -> None:
    if events is not None:
        from ftwiz.core.events import Progress

        events.emit(Progress(stage="export", done=done, total=total, message=message))


def _reporter(events, start: float, share: float, total: float, label: str):
    """A converter progress callback that advances this step's share of the overall export."""
    return lambda done, count, message: _emit(events, start + share * done / count, total, f"{label}: {message}")


def resolve_source(model_or_run: str | Path, *, overwrite: bool = False, events=None,
                   before_merge=None) -> tuple[Path, str, Path | None, bool]:
    """(HF model dir to convert, output name stem, default output folder or None, merged now?).

    ``before_merge(run, base_dir)``, when given, runs before a merge starts (the export's disk check).
    """
    from ftwiz.core.models import resolve_model
    from ftwiz.core.rundir import RunDir, RunFolderIncomplete

    try:
        run = RunDir.resolve(model_or_run)
    except RunFolderIncomplete:
        raise
    except FtwizError:
        from ftwiz.core.export.adapter_folder import refuse_adapter_folder

        refuse_adapter_folder(model_or_run)
        model_dir = resolve_model(str(model_or_run))
        return model_dir, model_dir.name, None, False
    if run.model.is_dir() and (run.model / "config.json").is_file():
        return run.model, run.name, run.export, False
    fresh = (run.merged / "config.json").is_file() and run.adapter.is_dir() and (
        _newest_mtime(run.merged) >= _newest_mtime(run.adapter))
    if fresh and not overwrite:
        return run.merged, run.name, run.export, False
    from ftwiz.core.export.merge import merge_adapter, resolve_adapter_and_base

    if before_merge is not None:
        before_merge(run, resolve_adapter_and_base(run.root)[1])
    merge_adapter(run.root, run.merged, overwrite=True,
                  progress=lambda d, t, m: _emit(events, d, t, f"merging {m}"))
    return run.merged, run.name, run.export, True


def _targets(quants: list[str], stem: str, out: Path | None, default_dir: Path | None) -> dict[str, Path]:
    """Output path per quant, absolute: the result, the ``--json`` output and the verify record name files that
    register/chat/serve open later, from another working folder."""
    if out is not None and out.suffix.lower() == ".gguf":  # Model.GGUF names a file as model.gguf does
        if len(quants) != 1:
            raise FtwizError(f"--out names one file but {len(quants)} quantizations were asked for",
                             fix="give a folder as --out, or one --quant")
        return {quants[0]: out.absolute()}
    folder = out if out is not None else default_dir if default_dir is not None else Path.cwd()
    return {q: (folder / f"{stem}-{q}.gguf").absolute() for q in quants}


def _remember(path: Path, quant: str, run_export_dir: Path | None) -> None:
    """Add the GGUF to ``ftwiz models``' registry; a registry problem never fails a finished export."""
    from ftwiz.core.registry import record_export

    with contextlib.suppress(OSError, FtwizError, ValueError):
        record_export(path, quant=quant, source_run=run_export_dir.parent.name if run_export_dir else None,
                      source_run_dir=run_export_dir.parent if run_export_dir else None)  # chat finds it from --out


def _require_space(model_dir: Path, targets: dict[str, Path], merged: Path | None = None) -> None:
    """Refuse before writing when the GGUFs (and a K-quant's F16 intermediate, and the merge about to run
    into ``merged``, when on the same file system) cannot fit."""
    import os

    from ftwiz.core.atomic import sweep_partials
    from ftwiz.core.diskspace import existing_ancestor, require_free
    from ftwiz.core.export.preflight import _count_parameters

    n = _count_parameters(model_dir)
    sizes = [estimated_bytes(n, q) for q in targets]
    names = ", ".join(p.name for p in targets.values())
    if needs_f16_intermediate(list(targets)) and "F16" not in targets:
        sizes.append(2 * n)  # the F16 a K-quant is made from, deleted afterwards
        names += " and an F16 intermediate"
    for folder in {p.parent for p in targets.values()} | ({merged.parent} if merged else set()):
        if folder.is_dir():
            sweep_partials(folder)  # leftovers of a killed export free their space first
    folder = next(iter(targets.values())).parent
    if merged is not None and os.stat(existing_ancestor(merged)).st_dev == os.stat(existing_ancestor(folder)).st_dev:
        sizes.append(sum(p.stat().st_size for p in model_dir.glob("*.safetensors")))  # merged = base as stored
        names = f"the merged model, {names}"
    require_free(folder, sum(sizes), f"the export ({names})")


def export_model(model_or_run: str | Path, quants: list[str], *, out: str | Path | None = None, verify: bool = False,
                 overwrite: bool = False, events=None) -> ExportResult:
    """Export a run or HF model to each of ``quants`` (F32/F16/BF16/Q8_0/Q4_0/Q4_K_M/Q5_K_M/Q6_K)."""
    from ftwiz.core.atomic import refuse_overwrite
    from ftwiz.core.export.verify import verify_gguf

    quants = [q.upper() for q in (quants or ["Q8_0"])]
    quants = sorted(dict.fromkeys(quants), key=lambda q: q not in OUT_TYPES)  # F16 before K-quants reuse it
    unknown = [q for q in quants if q not in ALL_QUANTS]
    if unknown:
        raise FtwizError(f"unknown quantization '{unknown[0]}'", fix=f"choose from {', '.join(ALL_QUANTS)}")
    out = Path(out) if out else None

    def before_merge(run, base_dir: Path) -> None:  # merge + GGUFs checked together, before the merge
        _require_space(base_dir, _targets(quants, run.name, out, run.export), merged=run.merged)

    model_dir, stem, default_dir, merged = resolve_source(model_or_run, overwrite=overwrite, events=events,
                                                          before_merge=before_merge)
    targets = _targets(quants, stem, out, default_dir)
    # a run's system prompt and thinking choice travel inside its GGUFs: chat, serve, register and eval still
    # prompt it as trained after the file is moved, renamed or copied elsewhere (core/trained_context.py)
    # (also `ftwiz export runs/RUN/merged`: the run's model given as a plain folder)
    run_root = default_dir.parent if default_dir is not None else run_of_model_folder(model_dir)
    context = run_context_keys(run_root) if run_root is not None else None
    for path in targets.values():
        refuse_overwrite(path, overwrite)
    _require_space(model_dir, targets)
    result = ExportResult(model_dir=str(model_dir), merged=merged)
    if context and SYSTEM_PROMPT in context:  # said, since a GGUF may be shared: it holds the prompt's text
        result.notes.append("the GGUF records the run's system prompt (key ftwiz.system_prompt), so chat, serve, "
                            "register and eval send it wherever the file goes")
    steps = len(quants) * (2 if verify else 1)
    step = 0
    intermediate: Path | None = None
    with contextlib.ExitStack() as scratch:
        for quant, path in targets.items():
            _emit(events, step, steps, f"writing {path.name}")
            if quant in OUT_TYPES or direct_quant_available(quant):  # K-quants too, without an F16 first
                convert_to_gguf(model_dir, path, quant, overwrite=overwrite, notes=result.notes,
                                progress=_reporter(events, step, 1.0, steps, quant), extra_keys=context)
            else:
                source = targets.get("F16") if "F16" in targets and targets["F16"].is_file() else None
                if source is None:
                    if intermediate is None:  # a locked scratch folder: swept like any partial if killed
                        folder = scratch.enter_context(scratch_dir(path.with_name(f"{stem}-F16.intermediate")))
                        intermediate = folder / f"{stem}-F16.gguf"
                        convert_to_gguf(model_dir, intermediate, "F16", overwrite=True, notes=result.notes,
                                        progress=_reporter(events, step, 0.5, steps, f"F16 for {quant}"),
                                        extra_keys=context)  # the quantizer copies every key
                    source = intermediate
                quantize_gguf(source, path, quant, overwrite=overwrite)
            result.gguf_paths.append(str(path))
            note = kquant_fallback_note(model_dir, quant)  # rows that are not whole blocks, as llama.cpp does
            if note:
                result.notes.append(note)
            _remember(path, quant, default_dir)
            forget_verdict(path)  # new bytes: no verdict kept for an earlier file they might resemble carries over
            step += 1
            if verify:
                _emit(events, step, steps, f"verifying {path.name}")
                report = verify_gguf(path, model_dir)
                write_verify_record(path, report)
                result.reports.append(report)
                step += 1
    _emit(events, steps, steps, "export complete")
    return result
