"""``ftwiz export MODEL_OR_RUN [--quant Q4_K_M ...] [--out FILE] [--verify] [--check] [--adapter-only]``.

Converts in-process (no llama.cpp checkout), quantizes with llama-cpp-python, and with ``--verify``
proves the GGUF computes what the model does; a failed check exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ftwiz.core.quant_types import QUANT_NAMES

EPILOG = """examples:
  ftwiz export my-run                                Q8_0 GGUF in runs/my-run/export/
  ftwiz export my-run --quant Q4_K_M --verify        smaller file, checked against the model
  ftwiz export my-run --check                        only say whether it can be exported
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a run directory or name, a model folder, a hub id in the cache, or 'demo'")
    parser.add_argument("--quant", action="append", metavar="TYPE",
                        help=f"{', '.join(QUANT_NAMES)} (repeatable; default Q8_0)")
    parser.add_argument("--out", type=Path, help="output .gguf file (one --quant) or folder")
    parser.add_argument("--verify", action="store_true", help="compare the GGUF with the model; exit 1 on mismatch")
    parser.add_argument("--check", action="store_true", help="only say whether the model can be exported")
    parser.add_argument("--adapter-only", action="store_true", help="write the LoRA adapter as a GGUF adapter")
    parser.add_argument("--base", help="base model for --adapter-only with an adapter folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--events", metavar="FILE", help="write progress events as JSON lines to FILE ('-' = stdout)")


def _check(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import human_bytes, print_json, say
    from ftwiz.core.export.preflight import check_exportable

    source = args.source
    needs_merge = False
    run = _run_of(source)
    if run is not None:
        base = run.base_model_dir()
        source = str(run.model) if run.model.is_dir() else str(base) if base else run.card().base_model or source
        needs_merge = not run.model.is_dir()
    # sized for what `ftwiz export` would write: its default is Q8_0 (export_step), not preflight's own default
    check = check_exportable(source, quants=args.quant or ["Q8_0"], out_dir=args.out, needs_merge=needs_merge)
    if args.json:
        from dataclasses import asdict

        print_json(asdict(check))
        return 0 if check.ok else 1
    # say(): user text (a folder named 'm [v2]', a fix with `pip install 'ftwiz[x]'`) printed as it is
    say(f"model: {check.model_dir}")
    say(f"architecture: {check.architecture or '-'} -> GGUF {check.gguf_architecture or '-'}")
    say(f"tokenizer: {check.tokenizer or '-'}")
    if check.parameters:
        say(f"parameters: {check.parameters / 1e6:.1f} M")
    for what, n in check.bytes_needed.items():
        if n:
            say(f"disk for {what}: {human_bytes(n)}")
    if check.disk_free is not None:
        say(f"disk free: {human_bytes(check.disk_free)}")
    for problem, fix in zip(check.problems, check.fixes + [""] * len(check.problems), strict=False):
        say(("problem:", "red"), f" {problem}")
        if fix:
            say("  ", ("fix:", "green"), f" {fix}")
    say(("exportable", "green") if check.ok else ("not exportable", "red"))
    return 0 if check.ok else 1


def _run_of(source: str):
    """The run ``source`` names, or None when it is a model folder or id."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.rundir import RunDir

    try:
        return RunDir.resolve(source)
    except FtwizError:
        return None


def _check_adapter(args: argparse.Namespace) -> int:
    """``--check --adapter-only``: whether the adapter can be written as a GGUF LoRA adapter (not whether the
    folder is a model, which an adapter never is)."""
    from ftwiz.core.cli.console import human_bytes, print_json, say
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.lora_gguf import check_adapter_gguf

    _refuse_ignored(args)
    try:
        adapter, base, size = check_adapter_gguf(args.source, base_dir=args.base)
        found = {"ok": True, "adapter": str(adapter), "base": str(base), "bytes": size, "problems": [], "fixes": []}
    except FtwizError as exc:
        found = {"ok": False, "adapter": args.source, "base": None, "bytes": 0, "problems": [exc.headline()],
                 "fixes": [exc.fix or ""]}
    if args.json:
        print_json(found)
        return 0 if found["ok"] else 1
    say(f"adapter: {found['adapter']}")
    if found["ok"]:
        say(f"base: {found['base']}")
        say(f"disk for the F32 adapter GGUF: {human_bytes(found['bytes'])}")
    for problem, fix in zip(found["problems"], found["fixes"], strict=True):
        say(("problem:", "red"), f" {problem}")
        if fix:
            say("  ", ("fix:", "green"), f" {fix}")
    say(("exportable as a GGUF LoRA adapter", "green") if found["ok"] else ("not exportable", "red"))
    return 0 if found["ok"] else 1


def _refuse_ignored(args: argparse.Namespace) -> None:
    from ftwiz.core.errors import FtwizError

    ignored = [flag for flag, given in (("--quant", any(q.upper() != "F32" for q in args.quant or [])),
                                        ("--verify", args.verify)) if given]
    if ignored:  # they were dropped silently: an F32 adapter came back for --quant Q4_K_M
        raise FtwizError(f"{' and '.join(ignored)} would be ignored: --adapter-only writes the LoRA adapter as F32 "
                         "and checks nothing", where=ignored[0],
                         fix=f"leave {' and '.join(ignored)} out (llama.cpp applies an F32 adapter over a base of any "
                             "quantization), or leave --adapter-only out to export the merged model")


def _adapter_only(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import say
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.lora_gguf import convert_adapter_to_gguf
    from ftwiz.core.rundir import RunDir

    _refuse_ignored(args)
    out = args.out
    if out is None:
        try:
            run = RunDir.resolve(args.source)
            out = run.export / f"{run.name}-lora-F32.gguf"
        except FtwizError:
            raise FtwizError("--out is required with --adapter-only for an adapter folder",
                             fix="add --out adapter.gguf") from None
    path = convert_adapter_to_gguf(args.source, out, base_dir=args.base, overwrite=args.overwrite)
    say(("wrote", "green"), f" {path} (use as ADAPTER in a Modelfile or llama.cpp --lora)")
    return 0


def _events_on_stdout(args: argparse.Namespace) -> int:
    """Export for a parent process (the wizard): events only on stdout, outcome as finished / failed."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.events import EventBus, JsonlSink
    from ftwiz.core.export.export_step import export_step

    if args.json:
        raise FtwizError("--json and --events - both write to standard output",
                         fix="write the events to a file (--events events.jsonl), or leave out --json")
    sink = JsonlSink(sys.stdout)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the event stream
    try:  # finished / failed / cancelled are emitted by the export step itself
        result = export_step(args.source, args.quant, out=args.out, verify=args.verify,
                             overwrite=args.overwrite, events=EventBus([sink]))
    except KeyboardInterrupt:
        return 130
    except FtwizError:
        return 2
    finally:
        sys.stdout = real_stdout
        sink.close()
    return 0 if result.passed else 1


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.events import EventBus, JsonlSink

    if args.quant:  # --quant Q4_K_M,Q8_0 as the recipe's export_quant writes it ("unknown quantization 'Q4_K_M,Q8_0'")
        args.quant = [name.strip() for item in args.quant for name in item.split(",") if name.strip()]
    if args.check or args.adapter_only:
        from ftwiz.core.export.unreadable import named_permission_errors

        with named_permission_errors():  # the export step itself names such files too (export_step.py)
            if args.check and args.adapter_only:  # the adapter as a GGUF LoRA, not the folder as a model
                return _check_adapter(args)
            return _check(args) if args.check else _adapter_only(args)
    if args.events == "-":
        return _events_on_stdout(args)
    # events to a file come on top of what the terminal shows (the report, --json, errors with their fix)
    sink = JsonlSink(args.events) if args.events else None
    try:
        return _export_and_report(args, EventBus([sink] if sink else []))
    finally:
        if sink is not None:
            sink.close()


def _export_and_report(args: argparse.Namespace, bus) -> int:
    from ftwiz.core.cli.console import human_bytes, print_json, say, styled
    from ftwiz.core.events import Progress
    from ftwiz.core.export.export_step import export_step

    # a spinner only where it can spin: to a pipe or a log rich draws nothing, and rich's console and live
    # display cost ~0.07 s of imports in a one-second export
    spinning = styled(sys.stdout) and not args.json
    if spinning:
        from ftwiz.core.cli.console import console
        from rich.markup import escape
    with console.status("exporting...") if spinning else contextlib.nullcontext() as status:
        def show(event) -> None:
            if isinstance(event, Progress) and status is not None:  # escaped: 'm [v2].gguf' keeps its brackets
                status.update(f"{escape(event.message)} ({event.done:.1f}/{event.total:.0f})")

        bus.subscribe(show)
        result = export_step(args.source, args.quant, out=args.out, verify=args.verify, overwrite=args.overwrite,
                             events=bus)
    if args.json:
        from dataclasses import asdict

        print_json({**asdict(result), "passed": result.passed})
        return 0 if result.passed else 1
    for path in result.gguf_paths:
        say(("wrote", "green"), f" {path} ({human_bytes(Path(path).stat().st_size)})")
    for note in result.notes:
        say(("note:", "yellow"), f" {note}")
    for report in result.reports:
        say((f"verify {Path(report.gguf_path).name}", "bold"), f" ({report.quant})")
        for check in report.checks:
            mark = {True: ("pass", "green"), False: ("FAIL", "red"), None: ("info", "cyan")}[check.passed]
            say("  ", mark, f" {check.name}: {check.detail}")
    if not result.passed:
        say(("verification failed: the GGUF does not behave like the model", "red"),
            " (recorded: register, chat and serve refuse it unless given --force)")
        return 1
    return 0
