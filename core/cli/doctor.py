"""``ftwiz doctor [--json] [--strict] [--quick]``: what this machine has, and what to fix."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON (schema: ftwiz doctor --schema)")
    parser.add_argument("--schema", action="store_true", help="print the JSON schema of the report and exit")
    parser.add_argument("--quick", action="store_true", help="skip the bitsandbytes/llama.cpp/Ollama checks")
    parser.add_argument("--strict", action="store_true", help="exit 1 when an error-level problem is found")


def render(report) -> None:
    from ftwiz.core.cli.console import console, human_bytes
    from rich.table import Table

    gpus = Table(title="GPUs", title_justify="left")
    for column in ("#", "vendor", "name", "VRAM total", "VRAM free", "compute", "bf16", "FA2"):
        gpus.add_column(column)
    for gpu in report.gpus:
        cc = f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}" if gpu.compute_capability else "-"
        gpus.add_row(str(gpu.index), gpu.vendor, gpu.name, human_bytes(gpu.total_bytes),
                     human_bytes(gpu.free_bytes), cc, "yes" if gpu.bf16 else "no",
                     "yes" if gpu.flash_attention_2 else "no")
    if not report.gpus:
        gpus.add_row("-", "none", "no GPU found: training runs on the CPU", "-", "-", "-", "-", "-")
    console.print(gpus)

    system = Table(title="System", title_justify="left", show_header=False)
    system.add_column("what")
    system.add_column("value")
    system.add_row("training device", report.device)
    system.add_row("NVIDIA driver", f"{report.driver_version or '-'} (CUDA {report.driver_cuda_version or '-'})")
    build = report.torch_cuda_version and f"CUDA {report.torch_cuda_version}" or (
        report.torch_hip_version and f"ROCm {report.torch_hip_version}") or "CPU only"
    system.add_row("torch", f"{report.torch_version or 'not installed'} ({build}); sees GPU: "
                   f"{'yes' if report.torch_sees_gpu else 'no'}")
    system.add_row("Apple MPS", "available" if report.mps_available else "no")
    system.add_row("CPU", f"{report.cpu_model} ({report.cpu_cores} threads)")
    system.add_row("RAM", f"{human_bytes(report.ram_available_bytes)} free of {human_bytes(report.ram_total_bytes)}")
    for path, free in report.disk_free_bytes.items():
        system.add_row("disk free", f"{human_bytes(free)} at {path}")
    system.add_row("HF cache", f"{report.hf_cache}{' (offline mode)' if report.hf_offline else ''}")
    console.print(system)

    if report.backends:
        backends = Table(title="Backends", title_justify="left")
        for column in ("backend", "status", "version", "detail"):
            backends.add_column(column)
        for b in report.backends:
            backends.add_row(b.name, "[green]ok[/green]" if b.ok else "[red]unavailable[/red]", b.version or "-",
                             b.detail)
        console.print(backends)

    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    if report.problems:
        console.print("[bold]Problems and fixes[/bold]")
    for problem in report.problems:
        colour = colours[problem.severity]
        console.print(f"[{colour}]{problem.severity}[/{colour}]: {problem.what}", highlight=False)
        console.print(f"  [green]fix:[/green] {problem.fix}", highlight=False)
    if not any(p.severity == "error" for p in report.problems):
        console.print("[green]ready:[/green] nothing blocks fine-tuning on this machine")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import print_json
    from ftwiz.core.hardware import HardwareReport, detect

    if args.schema:
        print_json(HardwareReport.model_json_schema())
        return 0
    report = detect(probe_backends=not args.quick)
    if args.json:
        print_json(report.model_dump(mode="json"))
    else:
        render(report)
    has_errors = any(p.severity == "error" for p in report.problems)
    return 1 if args.strict and has_errors else 0
