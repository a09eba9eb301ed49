"""``ftwiz plan MODEL|RECIPE.yaml``: estimate peak memory and recommend a setup that fits, with reasons."""

from __future__ import annotations

import argparse
from pathlib import Path

PART_LABELS = {
    "cuda_context": "CUDA context and kernels",
    "weights": "base weights",
    "trainable_weights": "trainable weights (fp32)",
    "gradients": "gradients",
    "optimizer_states": "optimizer states",
    "optimizer_states_paged": "optimizer states, paged to RAM (not counted)",
    "activations": "activations",
    "logits": "logits and loss",
    "temporary_buffers": "temporary buffers",
    "fragmentation": "allocator fragmentation margin",
    "autocast_copies": "lm_head's 16-bit copy (autocast)",
    "load_staging": "loading a checkpoint shard (peak while loading)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="recipe .yaml, model folder, config.json, hub id in the HF cache, or 'demo'")
    parser.add_argument("--vram-gb", type=float, help="plan for a GPU with this much memory instead of this machine")
    parser.add_argument("--seq-len", type=int, help="plan for this max length instead of the data's lengths")
    parser.add_argument("--dataset", help="measure sample lengths from this dataset (default: the recipe's)")
    parser.add_argument("--method", choices=["full", "lora", "qlora"], help="fix the method")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=int, help="fix the micro-batch")
    parser.add_argument("--lora-rank", "--rank", dest="rank", type=int, help="fix the LoRA rank")
    parser.add_argument("--lora-targets", metavar="NAMES",
                        help="fix the LoRA targets: 'all', or module names such as q_proj,v_proj")
    parser.add_argument("--grad-ckpt", action=argparse.BooleanOptionalAction, default=None,
                        help="fix gradient checkpointing on (--grad-ckpt) or off (--no-grad-ckpt)")
    parser.add_argument("--probe", action="store_true",
                        help="measure: run a few real training steps with the plan on this machine (a child "
                             "process), compare with the estimate, and search the micro-batch that fits")
    parser.add_argument("--probe-steps", type=int, default=3, help="optimizer steps per probe attempt (default 3)")
    parser.add_argument("--probe-budget-gb", type=float,
                        help="with --probe: the memory the measurement must fit in (default: the plan's budget)")
    parser.add_argument("--online", action="store_true",
                        help="for a hub id not in the local cache, download its config.json (only that file)")
    parser.add_argument("--download", action="store_true",
                        help="for a hub id not in the local cache, download the whole model first (see `ftwiz pull`)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def _recipe(args: argparse.Namespace):
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.recipe import load_recipe, parse_recipe

    path = Path(args.target)
    if path.suffix in (".yaml", ".yml"):
        recipe = load_recipe(path)
        data = recipe.model_dump(exclude_unset=True)
    else:
        data = {"model_name_or_path": args.target, "dataset": [args.dataset] if args.dataset else ["demo"]}
    for flag, key, value in (("--method", "finetuning_type", args.method),
                             ("--batch-size", "per_device_train_batch_size", args.batch),
                             ("--lora-rank", "lora_rank", args.rank),
                             ("--grad-ckpt", "gradient_checkpointing", args.grad_ckpt),
                             ("--lora-targets", "lora_target", args.lora_targets)):
        if value is not None:
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise FtwizError(f"{flag} {value} must be at least 1", fix=f"e.g. {flag} 1")
            data[key] = value
    if args.dataset:
        data["dataset"] = [args.dataset]
    return parse_recipe(data, source=args.target), bool(args.dataset) or path.suffix in (".yaml", ".yml")


def _has_weights(recipe) -> bool:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.models import resolve_model

    try:
        return (resolve_model(recipe.model_name_or_path, revision=recipe.revision) / "tokenizer_config.json").exists()
    except FtwizError:
        return False


def _params(count: int) -> str:
    """8.03B, 494M, 1.2M: a tiny model is not "0.00B"."""
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M" if count >= 1e7 else f"{count / 1e6:.1f}M"


def render(plan, spec) -> None:
    from ftwiz.core.cli.console import console, human_bytes
    from ftwiz.core.planner.catalog import duration
    from rich.table import Table

    verdict = "[green]fits[/green]" if plan.fits else "[red]does NOT fit[/red]"
    console.print(f"[bold]{spec.model_type}[/bold], {_params(spec.total_params)} parameters "
                  f"({spec.num_layers} layers, hidden {spec.hidden_size}, vocabulary {spec.vocab_size}): {verdict}")
    setup = Table(title="Recommended setup", title_justify="left", show_header=False)
    setup.add_column("what")
    setup.add_column("value")
    rows = [("method", plan.method), ("device", plan.device), ("micro-batch", str(plan.micro_batch)),
            ("gradient accumulation", str(plan.grad_accum)), ("effective batch", str(plan.effective_batch)),
            ("gradient checkpointing", "on" if plan.gradient_checkpointing else "off"),
            ("max length", str(plan.max_seq_len)), ("optimizer", plan.optimizer), ("dtype", plan.dtype)]
    if plan.lora_rank:
        rows.append(("LoRA", f"rank {plan.lora_rank}, alpha {plan.lora_alpha}, on {', '.join(plan.lora_targets)}"))
    if plan.est_seconds_per_epoch is not None:
        basis = "from measured tokens/s" if plan.measured and plan.measured.tokens_per_s else "an estimate"
        rows.append(("time per epoch", f"{duration(plan.est_seconds_per_epoch)} ({basis})"))
    for row in rows:
        setup.add_row(*row)
    console.print(setup)
    memory = Table(title="Peak memory estimate", title_justify="left")
    memory.add_column("part")
    memory.add_column("size", justify="right")
    for name, size in plan.estimate.parts.items():
        if size:
            memory.add_row(PART_LABELS.get(name, name), human_bytes(size))
    memory.add_row("[bold]peak[/bold]", f"[bold]{human_bytes(plan.estimate.peak_bytes)}[/bold]")
    if plan.estimate.budget_bytes:
        memory.add_row("usable budget", human_bytes(plan.estimate.budget_bytes))
    console.print(memory)
    console.print("[bold]Why[/bold]")
    for reason in plan.reasons:
        console.print(f"  - {reason}")
    for warning in plan.warnings:
        console.print(f"  [yellow]! {warning}[/yellow]")


def _spec(model: str, online: bool, to_stderr: bool = False):
    """The model's shape. A hub id not downloaded yet: a curated one plans from ftwiz's built-in copy of its
    config.json (what the wizard's model step rates); any other points at --online, which fetches only that."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.planner import load_model_spec

    try:
        return load_model_spec(model, allow_download=online)
    except FtwizError as exc:
        if online or model.count("/") != 1 or "not in the local Hugging Face cache" not in exc.what:
            raise
        from ftwiz.core.planner.catalog import curated_spec

        spec = curated_spec(model)
        if spec is not None:
            from ftwiz.core.cli.console import console, err_console

            (err_console if to_stderr else console).print(
                f"planning from ftwiz's built-in config for {model} (not downloaded)", highlight=False)
            return spec
        raise FtwizError(exc.what, where=exc.where,
                         fix=f"plan it without the weights: `ftwiz plan {model} --online` downloads only its "
                             f"config.json; `--download` (or `ftwiz pull {model}`) fetches the whole model") from None


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli import EXIT_CHECK_FAILED, EXIT_OK
    from ftwiz.core.cli.console import print_json
    from ftwiz.core.recipe_inputs import training_lengths
    from ftwiz.core.step_plan import export_problems, plan_job

    recipe, measure = _recipe(args)
    if getattr(args, "download", False):
        from ftwiz.core.cli.pull import ensure_model

        ensure_model(recipe.model_name_or_path, recipe.revision, download=True, vram_gb=args.vram_gb,
                     to_stderr=args.json)
    spec = _spec(recipe.model_name_or_path, args.online, to_stderr=args.json)
    hardware = None
    if args.vram_gb is None:
        from ftwiz.core.hardware.detect import detect

        hardware = detect(probe_backends=False)
    # the training split's lengths as `ftwiz train` and the wizard's plan step measure them
    lengths = training_lengths(recipe) if measure and args.seq_len is None and _has_weights(recipe) else None
    if args.probe:
        from ftwiz.core.cli.plan_probe import check_preconditions

        check_preconditions(args, recipe)
    plan = plan_job(recipe, hardware, vram_gb=args.vram_gb, dataset_lengths=lengths, seq_len=args.seq_len,
                    spec=spec, export_check=not args.probe)
    report = None
    if args.probe:
        from ftwiz.core.cli.plan_probe import run_probe

        report = run_probe(args, recipe, plan, spec, hardware, lengths)
        plan = report.plan  # the measured plan, with the export preflight's warnings as plan_job adds them
        plan.warnings.extend(f"export preflight: {problem}" for problem in export_problems(recipe))
    if args.json:
        from ftwiz.core.cli.plan_probe import probe_json

        print_json({"model": {"type": spec.model_type, "parameters": spec.total_params, "parts": spec.parts()},
                    **plan.model_dump(mode="json"), **({"probe": probe_json(report)} if report else {})})
    else:
        render(plan, spec)
        if report:
            from ftwiz.core.cli.plan_probe import render_probe

            render_probe(report)
    return EXIT_OK if plan.fits else EXIT_CHECK_FAILED
