"""``ftwiz pull MODEL [--revision R] [--source hf|modelscope]``: download a base model, checked first.

Shows the files and their size, free disk (with the later merge and GGUF), and whether the model fits
this machine, then downloads with progress. Ctrl-C keeps what arrived: the same command resumes.
``train``/``plan`` call :func:`ensure_model` for ``--download``.
"""

from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  ftwiz pull Qwen/Qwen2.5-1.5B-Instruct                 check, then download (asks first in a terminal)
  ftwiz pull Qwen/Qwen3-0.6B --revision main --yes      no question
  ftwiz pull meta-llama/Llama-3.1-8B-Instruct --dry-run  sizes, disk and fit only
  HF_ENDPOINT=https://hf-mirror.com ftwiz pull Qwen/Qwen3-0.6B     through a mirror
  ftwiz pull Qwen/Qwen3-0.6B --source modelscope        from ModelScope (pip install 'ftwiz[modelscope]')

Files land in the Hugging Face cache (HF_HUB_CACHE, or HF_HOME/hub); HF_TOKEN is used for gated models.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="hub id, e.g. Qwen/Qwen2.5-1.5B-Instruct")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--source", choices=["hf", "modelscope"], default="hf",
                        help="hf: the Hugging Face Hub or the mirror in HF_ENDPOINT (default); modelscope: modelscope.cn")
    parser.add_argument("--yes", "-y", action="store_true", help="download without asking")
    parser.add_argument("--dry-run", action="store_true", help="show files, sizes, disk and fit; download nothing")
    parser.add_argument("--vram-gb", type=float, help="judge the fit for this much GPU memory instead of this machine")


def show_plan(plan, console=None) -> None:
    from ftwiz.core.hub.progress import human_size
    from rich.table import Table

    console = console or _console(False)
    lines = plan.summary_lines()
    console.print(f"[bold]{lines[0]}[/bold]", highlight=False)
    table = Table("file", "size", show_edge=False, pad_edge=False)
    for file in sorted(plan.selection.files, key=lambda f: f.name):
        table.add_row(file.name, human_size(file.size or 0))
    console.print(table)
    if plan.selection.skipped:
        console.print(f"[dim]left out: {len(plan.selection.skipped)} files not needed for training or export "
                      "(pickled weights, other formats, sub-folders)[/dim]", highlight=False)
    for line in lines[1:]:
        style = "yellow" if line.startswith("warning") else ""
        console.print(f"[{style}]{line}[/{style}]" if style else line, highlight=False)


def _console(to_stderr: bool):
    from ftwiz.core.cli.console import console, err_console

    return err_console if to_stderr else console


def download_with_progress(plan, console=None, cancelled=lambda: False):
    """run_pull drawn with rich: the whole download and the current file, bytes, speed, time left."""
    from ftwiz.core.hub.pull import run_pull
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console or _console(False), transient=False) as progress:
        overall = progress.add_task("total", total=plan.selection.total_bytes)
        current = progress.add_task("", total=None)

        def on_progress(p) -> None:
            progress.update(overall, completed=p.done, description=f"total ({p.files_done}/{p.files_total} files)")
            progress.update(current, completed=p.file_done, total=p.file_total or None, description=p.file)

        return run_pull(plan, on_progress=on_progress, cancelled=cancelled)


def _confirm(plan, prefix: str = "") -> bool:
    from ftwiz.core.hub.progress import human_size

    if not sys.stdin.isatty():
        return True  # a script asked for it by running pull
    answer = input(f"{prefix}download {human_size(plan.to_download)}? [Y/n] ").strip().lower()
    return answer in ("", "y", "yes")


def _hardware(vram_gb: float | None):
    if vram_gb is not None:
        return None
    from ftwiz.core.hardware.detect import detect

    return detect(probe_backends=False)


def ensure_model(name: str, revision: str | None, *, download: bool, vram_gb: float | None = None,
                 to_stderr: bool = False, cancelled=lambda: False, ask: bool = False) -> None:
    """For ``train``/``plan``: a hub id not in the cache is pulled with ``--download``; in a terminal (``ask``)
    the user is shown the sizes and asked; otherwise a clear error naming ``--download``.

    ``to_stderr``: stdout is an event stream or JSON, so the plan and progress go to stderr."""
    from pathlib import Path

    from ftwiz.core.errors import FtwizError
    from ftwiz.core.hub.pull import cached_snapshot, prepare_pull

    if name.count("/") > 1 or name.startswith((".", "/", "~")) or Path(name).expanduser().exists():  # a path
        from ftwiz.core.models import resolve_model

        resolve_model(name)  # a missing folder or a file given as the model: said before train makes a run folder
        return
    if name.count("/") != 1 or not name.split("/")[0] or cached_snapshot(name, revision) is not None:
        return
    missing = FtwizError(f"{name} is not in the local Hugging Face cache",
                         fix=f"add --download to fetch it now, or run `ftwiz pull {name}` first")
    if not download and not (ask and sys.stdin.isatty()):
        raise missing
    plan = prepare_pull(name, revision, hardware=_hardware(vram_gb), vram_gb=vram_gb)
    show_plan(plan, _console(to_stderr))
    if not download and not _confirm(plan, prefix=f"{name} is not downloaded yet. "):
        raise missing
    download_with_progress(plan, _console(to_stderr), cancelled)


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli import EXIT_INTERRUPTED, EXIT_OK
    from ftwiz.core.cli.console import console
    from ftwiz.core.hub.progress import PullCancelled, human_size

    if args.source == "modelscope":
        from ftwiz.core.hub.modelscope import pull_modelscope

        folder = pull_modelscope(args.model, args.revision)
        from rich.markup import escape  # a cache folder with brackets is printed as it is

        console.print(f"[green]downloaded[/green] {escape(args.model)} from ModelScope to {escape(str(folder))}\n"
                      f"use it with: model_name_or_path: {escape(str(folder))}", highlight=False, soft_wrap=True)
        return EXIT_OK
    from ftwiz.core.hub.pull import cached_snapshot, prepare_pull
    from huggingface_hub import constants

    snapshot = cached_snapshot(args.model, args.revision) if constants.is_offline_mode() else None
    if snapshot is not None:  # offline, and nothing to fetch: say what is here instead of failing
        console.print(f"{args.model} is in the cache at commit {snapshot.name} (offline mode: not checked for "
                      f"updates)\n  {snapshot}", highlight=False, soft_wrap=True)
        return EXIT_OK
    plan = prepare_pull(args.model, args.revision, hardware=_hardware(args.vram_gb), vram_gb=args.vram_gb)
    show_plan(plan)
    if args.dry_run:
        return EXIT_OK
    if plan.to_download and not args.yes and not _confirm(plan):
        console.print("nothing downloaded")
        return EXIT_OK
    try:
        result = download_with_progress(plan)
    except (KeyboardInterrupt, PullCancelled):
        console.print("[yellow]stopped[/yellow]: what arrived is kept; run the same command to resume")
        return EXIT_INTERRUPTED
    _prepare_export(result.path)
    got = f"{human_size(result.downloaded_bytes)} downloaded" if result.downloaded_bytes else "already in the cache"
    console.print(f"[green]{result.repo_id}[/green] at commit {result.commit} ({got})\n"
                  f"  {result.path}\n  use it with: model_name_or_path: {result.repo_id}  "
                  f"(runs record commit {result.commit[:12]} in their run card)", highlight=False, soft_wrap=True)
    return EXIT_OK


def _prepare_export(snapshot) -> None:
    """Fill the export's vocabulary cache for the model just pulled (~0.5 s now instead of in its first
    ``ftwiz export``). Only here: ``train --download`` fills it from the tokenizer it saves when training ends.
    Ctrl-C meanwhile skips it: the download is complete, and the export parses the vocabulary itself."""
    import contextlib

    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    with contextlib.suppress(KeyboardInterrupt):
        warm_vocab_cache(snapshot)
