"""The export child the wizard runs: ``python -m ftwiz.tui.worker_export RUN --quant Q [--verify]``.

It calls the same core entry point as ``ftwiz export`` (:func:`ftwiz.core.export.pipeline.export_model`)
and reports through the event stream the train child uses: Progress while it works, then Finished with
the GGUF path and the verification checks, or Failed with what to do. Stdout carries only events (JSON
lines); anything else the libraries print goes to stderr, which the wizard shows dimmed in its log.
Ctrl-C (the wizard's cancel) ends it with ``finished(status="cancelled")`` and exit 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ftwiz.tui.worker_export", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="run name or directory (or a model folder)")
    parser.add_argument("--quant", default="Q8_0", help="GGUF type, e.g. Q8_0, Q4_K_M, F16")
    parser.add_argument("--verify", action="store_true", help="compare the GGUF with the model")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    events_out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the event stream

    from ftwiz.core.errors import FtwizError
    from ftwiz.core.events import EventBus, Failed, Finished, JsonlSink

    bus = EventBus([JsonlSink(events_out)])
    try:
        from ftwiz.core.export.pipeline import export_model

        result = export_model(args.source, [args.quant], verify=args.verify, overwrite=args.overwrite, events=bus)
    except KeyboardInterrupt:
        bus.emit(Finished(status="cancelled"))
        return 130
    except FtwizError as exc:
        where = f"{exc.where}: " if exc.where else ""
        bus.emit(Failed(reason=f"{where}{exc.what}", fix=exc.fix))
        return 2
    checks = [{"name": c.name, "passed": c.passed, "detail": c.detail} for r in result.reports for c in r.checks]
    if not result.passed:
        failed = "; ".join(f"{c['name']}: {c['detail']}" for c in checks if c["passed"] is False)
        bus.emit(Failed(reason=f"verification failed: the GGUF does not behave like the model ({failed})",
                        fix="try a less aggressive quantization (Q8_0 or F16) and export again"))
        return 1
    bus.emit(Finished(output_path=result.gguf_paths[0] if result.gguf_paths else None,
                      summary={"gguf_paths": result.gguf_paths, "merged": result.merged, "checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
