"""``ftwiz plan --probe``: measure the plan on this machine and show measured next to estimated."""

from __future__ import annotations

import argparse

GIB = 1024**3
MEASURED_LABELS = {
    "runtime": "Python, torch and transformers (before the model)",
    "model_load": "model loaded",
    "training": "added by the training steps",
    "peak_rss": "process peak resident memory (RSS)",
    "torch_max_allocated": "torch peak allocated",
    "allocator_reserve": "allocator reserve above it",
    "cuda_context_and_libraries": "CUDA context, kernels, library workspaces",
    "cuda_context_estimated": "CUDA context (estimated: NVML gave no per-process figure)",
    "nvml_process_used": "NVML: this process (nvidia-smi)",
    "nvml_device_used": "NVML: whole device",
}


def check_preconditions(args: argparse.Namespace, recipe) -> None:
    from ftwiz.core.errors import FtwizError

    if args.vram_gb is not None:
        raise FtwizError("--probe measures this machine, and --vram-gb plans for another card",
                         fix="drop --vram-gb, or measure against a smaller budget with --probe-budget-gb G")
    if args.probe_budget_gb is not None and not 0 < args.probe_budget_gb <= 4096:
        raise FtwizError(f"--probe-budget-gb {args.probe_budget_gb} is not a plausible amount of memory",
                         fix="give GiB, e.g. --probe-budget-gb 10")


def run_probe(args: argparse.Namespace, recipe, plan, spec, hardware, lengths: list[int] | None):
    """The probe report for ``plan`` (the measured plan is ``report.plan``); progress lines on stderr."""
    from ftwiz.core.cli.console import err_console
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.models import resolve_model
    from ftwiz.core.planner.measured import model_key
    from ftwiz.core.planner.probe import probe_plan

    check_preconditions(args, recipe)
    model_dir = resolve_model(recipe.model_name_or_path, revision=recipe.revision)
    if not any(model_dir.glob("*.safetensors")):
        raise FtwizError(f"the probe needs the model's weights, and {model_dir} has no *.safetensors",
                         fix="download the model (`ftwiz pull ID`, or add --download), or plan without --probe")
    synthetic = lengths is None
    where = (f"synthetic samples of {plan.max_seq_len} tokens" if synthetic
             else f"the longest samples of your data ({plan.max_seq_len} tokens)")
    err_console.print(f"probe: {args.probe_steps} training steps per attempt on {where}, in a child process")
    epoch_tokens = sum(min(n, plan.max_seq_len) for n in lengths) if lengths else None
    return probe_plan(
        plan, recipe=recipe, spec=spec, model_dir=model_dir,
        model_key=model_key(recipe.model_name_or_path, recipe.revision), hardware=hardware, synthetic=synthetic,
        budget_bytes=int(args.probe_budget_gb * GIB) if args.probe_budget_gb else None, steps=args.probe_steps,
        fixed_length=args.seq_len is not None,
        epoch_tokens=epoch_tokens, on_attempt=lambda m: err_console.print(f"  probe: {_attempt_line(m)}"))


def _attempt_line(m) -> str:
    what = f"micro-batch {m.micro_batch}, checkpointing {'on' if m.grad_ckpt else 'off'}, {m.seq_len} tokens"
    if m.oom:
        return f"{what}: out of memory"
    if m.error:
        return f"{what}: failed ({m.error})"
    speed = f", {m.tokens_per_s:.0f} tokens/s" if m.tokens_per_s else ""
    return f"{what}: {m.peak_bytes / GIB:.2f} GiB measured, {(m.estimate_bytes or 0) / GIB:.2f} GiB estimated{speed}"


def render_probe(report) -> None:
    from ftwiz.core.cli.console import console, human_bytes
    from rich.table import Table

    m = report.chosen
    table = Table(title="Measured on this machine", title_justify="left")
    table.add_column("what")
    table.add_column("measured", justify="right")
    table.add_column("estimated", justify="right")
    table.add_row("[bold]peak[/bold]", f"[bold]{human_bytes(m.peak_bytes)}[/bold]",
                  human_bytes(m.estimate_bytes) if m.estimate_bytes else "-")
    if "runtime" in m.parts:  # CPU: the estimate covers the model and training, not the interpreter and libraries
        table.add_row("  model and training (peak less the runtime)", human_bytes(m.peak_bytes - m.parts["runtime"]),
                      human_bytes(m.estimate_bytes) if m.estimate_bytes else "-")
    for name, size in m.parts.items():
        table.add_row(f"  {MEASURED_LABELS.get(name, name)}", human_bytes(size), "")
    if m.budget_bytes:
        table.add_row("budget", human_bytes(m.budget_bytes), "")
    table.add_row("tokens/s", f"{m.tokens_per_s:.0f}" if m.tokens_per_s else "-", "")
    console.print(table)
    console.print("[bold]Attempts[/bold]")
    for attempt in report.attempts:
        console.print(f"  - {_attempt_line(attempt)}")
    for note in report.notes[len(report.attempts):]:
        console.print(f"  [yellow]! {note}[/yellow]")


def probe_json(report) -> dict:
    return {"attempts": [a.model_dump(mode="json") for a in report.attempts],
            "notes": report.notes, "chosen": report.chosen.model_dump(mode="json") if report.chosen else None}
