"""The export step: the one function ``ftwiz export`` (and through it the wizard's export step, which runs
``ftwiz export --events -`` as a child) calls.

It refuses a run that did not finish training, exports (:func:`ftwiz.core.export.pipeline.export_model`:
merge, convert, quantize, verify) and reports the outcome as events from core, as training does: ``finished``
with the files and checks, or ``failed`` with the reason and a fix (a failed verification included), or
``finished`` with status ``cancelled`` on Ctrl+C. A script calling it gets the same lifecycle as the wizard.
"""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.events import EventBus, Failed, Finished
from ftwiz.core.export.pipeline import ExportResult, export_model
from ftwiz.core.export.unreadable import named_permission_errors


def require_trained_source(source: str | Path) -> None:
    """A cancelled or failed run has no model to export: say how to finish it, not a merge error."""
    from ftwiz.core.rundir import RunDir

    try:
        run = RunDir.resolve(source)
    except FtwizError:
        return  # a model folder or id, not a run
    run.require_trained("export")


def export_step(source: str | Path, quants: list[str] | None = None, *, out: str | Path | None = None,
                verify: bool = False, overwrite: bool = False, events: EventBus | None = None) -> ExportResult:
    """Export ``source`` (a run or a model) to each of ``quants`` (default Q8_0), emitting the outcome.

    Raises what the export raises (FtwizError, KeyboardInterrupt) after emitting ``failed`` / ``cancelled``;
    a failed verification is returned (``result.passed`` False) after emitting ``failed``.
    """
    bus = events if events is not None else EventBus()
    try:
        with named_permission_errors():  # a model saved by another user (mode 0600): its file, not a traceback
            require_trained_source(source)
            result = export_model(source, quants or ["Q8_0"], out=out, verify=verify, overwrite=overwrite,
                                  events=bus)
    except KeyboardInterrupt:
        bus.emit(Finished(status="cancelled"))
        raise
    except FtwizError as exc:
        bus.emit(Failed(reason=exc.headline(), fix=exc.fix))
        raise
    checks = [{"name": c.name, "passed": c.passed, "detail": c.detail} for r in result.reports for c in r.checks]
    if not result.passed:
        failed = "; ".join(f"{c['name']}: {c['detail']}" for c in checks if c["passed"] is False)
        bus.emit(Failed(reason=f"verification failed: the GGUF does not behave like the model ({failed})",
                        fix="try a less aggressive quantization (Q8_0 or F16) and export again"))
    else:
        bus.emit(Finished(output_path=result.gguf_paths[0] if result.gguf_paths else None,
                          summary={"gguf_paths": result.gguf_paths, "merged": result.merged, "checks": checks,
                                   "notes": result.notes}))
    return result
