"""``ftwiz models list|show|rm``: the GGUFs ftwiz exported, their sizes, quant types, runs and Ollama names."""

from __future__ import annotations

import argparse

EPILOG = """actions:
  list   every GGUF under runs/*/export (and base copies, marked "(base)") plus those ftwiz registered,
         with its `export --verify` verdict: passed, FAILED (register/chat/serve refuse it), not verified,
         or stale (the GGUF was written again after the check)
  show   one model: path, size, quantization, run, Ollama names
  rm     forget a model (--delete-file also deletes it, --ollama also removes it from Ollama)

examples:
  ftwiz models list
  ftwiz models show my-run          # a run name means its newest fine-tuned GGUF
  ftwiz models rm my-run-Q8_0.gguf --delete-file
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=["list", "show", "rm"],
                        help="list (the default), show or rm (see below)")
    parser.add_argument("model", nargs="?", help="show/rm: path, file name, run name or Ollama name")
    parser.add_argument("--delete-file", action="store_true", help="rm: also delete the GGUF file")
    parser.add_argument("--ollama", action="store_true", help="rm: also remove it from Ollama")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _where(entry) -> str:
    return ", ".join(f"ollama:{r.name}" for r in entry.ollama) or "-"


def _verified(status) -> str:
    """The ``export --verify`` column: a failed GGUF in red (register/chat/serve refuse it), stale in yellow."""
    from rich.markup import escape

    style = {"passed": "green", "failed": "red", "stale": "yellow", "unreadable": "red"}.get(status.state)
    return f"[{style}]{escape(status.label)}[/{style}]" if style else escape(status.label)


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import console, human_bytes, print_json
    from ftwiz.core.deploy.models_rm import remove_model
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.verify_record import verify_status
    from ftwiz.core.registry import find_model, list_models, registry_path

    if args.action == "list":
        entries = list_models()
        if args.json:
            print_json([e.to_json() | {"verify": verify_status(e.path).to_json()} for e in entries])
            return 0
        if not entries:
            console.print("no exported models yet; `ftwiz export RUN` writes one", highlight=False)
            return 0
        from rich.markup import escape
        from rich.table import Table

        table = Table("model", "size", "quant", "run", "verified", "registered")
        # The path folds onto more lines rather than being cut with an ellipsis: it is what users copy.
        table.add_column("path", overflow="fold", ratio=1)
        for e in entries:  # names and paths escaped: 'm [v2].gguf' is listed as it is, not read as a style
            table.add_row(escape(e.name) + ("" if e.exists else " [red](missing)[/red]"), human_bytes(e.size),
                          escape(e.quant or "-"), escape(e.run_label), _verified(verify_status(e.path)),
                          escape(_where(e)), escape(e.path))
        console.print(table)
        return 0
    if not args.model:
        raise FtwizError(f"`ftwiz models {args.action}` needs a MODEL", where="MODEL",
                         fix="see `ftwiz models list` for names")
    entry = find_model(args.model)
    if args.action == "show":
        from rich.markup import escape

        if args.json:
            print_json(entry.to_json() | {"verify": verify_status(entry.path).to_json()})
            return 0
        rows = [("path", entry.path), ("exists", "yes" if entry.exists else "no (file missing)"),
                ("size", human_bytes(entry.size)), ("quant", entry.quant or "-"), ("run", entry.run_label),
                ("added", entry.added_at or "-"), ("registry", str(registry_path()) if entry.in_registry else "-")]
        status = verify_status(entry.path)
        record = escape(str(status.record)) if status.state != "unverified" else "`ftwiz export RUN --verify` checks it"
        rows.append(("verified", f"{_verified(status)} ({record})"))
        rows += [("ollama", f"{r.name} at {r.host} ({r.registered_at})") for r in entry.ollama]
        for key, value in rows:  # the verified row is markup already; the others may hold brackets ('m [v2].gguf')
            console.print(f"[bold]{key:>9}[/bold]  {value if key == 'verified' else escape(str(value))}",
                          highlight=False)
        return 0
    done = remove_model(entry, delete_file=args.delete_file, ollama=args.ollama)
    if not done:
        console.print(f"{entry.name} is not in the registry; nothing to remove "
                      "(add --delete-file to delete the file itself)", highlight=False)
        return 0
    for line in done:
        console.print(line, highlight=False)
    return 0
