"""``ftwiz merge RUN|ADAPTER [--base MODEL] --out DIR [--overwrite]``: adapter into its 16-bit base.

Streams one tensor at a time, so merging an 8B model needs about one tensor of RAM, not the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a run directory or name, or a LoRA adapter folder")
    parser.add_argument("--base", help="base model folder or hub id (default: the run card's or adapter's base)")
    parser.add_argument("--out", type=Path, help="folder for the merged model (default: the run's merged/)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import console, human_bytes, say
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.merge import merge_adapter
    from ftwiz.core.rundir import RunDir

    out = args.out
    if out is None:
        try:
            out = RunDir.resolve(args.source).merged
        except FtwizError:
            from ftwiz.core.adapter_config import is_adapter_dir

            if not is_adapter_dir(args.source):  # a mistyped run name is not an adapter missing its --out
                raise
            raise FtwizError("--out is required when merging an adapter folder",
                             fix="add --out DIR (a new folder for the merged model)") from None
    from ftwiz.core.export.unreadable import named_permission_errors

    with named_permission_errors(), console.status("merging...") as status:
        path = merge_adapter(args.source, out, base_dir=args.base, overwrite=args.overwrite,
                             progress=lambda d, t, m: status.update(f"merging {d}/{t}: {m}"))
    size = sum(p.stat().st_size for p in Path(path).glob("*.safetensors"))
    say(("merged", "green"), f" into {path} ({human_bytes(size)} of weights)")  # 'merged [v2]' printed as it is
    _prepare_export(Path(path))
    return 0


def _prepare_export(merged: Path) -> None:
    """Fill the export's vocabulary cache for the merged model (~0.5 s for Qwen2's 151k tokens), so its first
    ``ftwiz export`` does not parse the vocabulary. A run trained by ftwiz has it cached already (the lookup
    costs milliseconds); an adapter trained by another tool does not. Ctrl-C meanwhile skips it: the merge is
    complete, and the export parses the vocabulary itself."""
    import contextlib

    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    with contextlib.suppress(KeyboardInterrupt):
        warm_vocab_cache(merged)
