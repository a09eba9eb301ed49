"""``ftwiz register GGUF|RUN [--name NAME]``: register with Ollama, then prove it answers and stops.

Given a run, its newest fine-tuned GGUF in export/ is used (never the base copy made for comparisons), and the recipe supplies the name
(``ollama_name``) and the SYSTEM prompt; ``num_ctx`` follows the rule serve and chat follow
(:mod:`ftwiz.core.deploy.context_size`). ``--modelfile PATH`` only
writes the checked Modelfile, for ``ollama create NAME -f PATH`` on another machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  ftwiz register my-run                              name, system prompt and context from the recipe
  ftwiz register my-run --name my-bot --force
  ftwiz register my-run --modelfile Modelfile        only write the Modelfile (no Ollama needed)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="GGUF|RUN", help="a .gguf file or an ftwiz run (its export/*.gguf)")
    parser.add_argument("--name", help="Ollama model name (default: the recipe's ollama_name or the file name)")
    parser.add_argument("--system", help="SYSTEM prompt (default: the recipe's system)")
    parser.add_argument("--num-ctx", type=int, help="context length in tokens (default: the model's, at most 4096, or a longer trained cutoff_len; as serve and chat)")
    parser.add_argument("--adapter", type=Path, help="a GGUF LoRA adapter to apply on top (ADAPTER)")
    parser.add_argument("--license", help="LICENSE text")
    parser.add_argument("--host", help="Ollama URL (default: $OLLAMA_HOST or http://127.0.0.1:11434)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing Ollama model (or Modelfile) of that name, and use a GGUF even "
                             "if its `export --verify` failed")
    parser.add_argument("--no-smoke-test", action="store_true", help="skip the /api/chat check after creating")
    parser.add_argument("--modelfile", type=Path, help="only write the Modelfile here; do not contact Ollama")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.atomic import write_text_atomic
    from ftwiz.core.cli.console import console, print_json
    from ftwiz.core.deploy.register_step import register_inputs, register_model

    inputs = register_inputs(args.model, name=args.name, system=args.system, num_ctx=args.num_ctx,
                             adapter=args.adapter)
    name = inputs.name
    if args.modelfile:
        from ftwiz.core.deploy.modelfile import modelfile_spec

        spec = modelfile_spec(inputs.gguf, system=inputs.system, num_ctx=inputs.num_ctx, adapter=args.adapter,
                              license=args.license, enable_thinking=inputs.enable_thinking, force=args.force)
        text = spec.file_text()
        if Path(args.modelfile).exists() and not args.force:  # register's replace flag is --force, not --overwrite
            from ftwiz.core.errors import FtwizError

            raise FtwizError(f"{args.modelfile} already exists and ftwiz does not overwrite files without asking",
                             fix="choose another --modelfile path, or pass --force to replace it")
        write_text_atomic(args.modelfile, text, overwrite=args.force)
        if args.json:
            print_json({"modelfile": str(Path(args.modelfile).resolve()), "gguf": str(spec.gguf), "name": name,
                        "family": spec.template.family, "stops": spec.stops, "notes": list(spec.notes),
                        "verify_failed": spec.failed_verify or None})
            return 0
        import shlex

        from rich.markup import escape

        # escaped and quoted: 'Modelfile [v2]' is printed as it is, in a command that can be pasted into a shell
        console.print(f"wrote {escape(str(args.modelfile))}\n  next: [bold]"
                      f"{escape(shlex.join(['ollama', 'create', name, '-f', str(args.modelfile)]))}[/bold]",
                      highlight=False)
        _print_notes(console, text)
        return 0

    def status(text: str) -> None:
        if not args.json:
            console.print(f"  {text}", style="dim", highlight=False)

    result = register_model(inputs, host=args.host, smoke_test=not args.no_smoke_test, adapter=args.adapter,
                            license=args.license, overwrite=args.force, on_status=status, force_unverified=args.force)
    if args.json:
        print_json({"name": result.name, "host": result.host, "digest": result.digest, "family": result.family,
                    "stops": result.stops, "uploaded": result.uploaded,
                    "smoke": None if result.smoke is None else {"answer": result.smoke.answer,
                                                                 "done_reason": result.smoke.done_reason}})
        return 0
    console.print(f"[green]registered[/green] [bold]{result.name}[/bold] at {result.host} "
                  f"(template {result.family}, stop {', '.join(result.stops)})", highlight=False)
    if result.smoke:
        console.print(f"  smoke test: answered and stopped by itself: {result.smoke.answer[:120]!r}", highlight=False)
    console.print(f"  chat: [bold]ollama run {result.name}[/bold]  or  [bold]ftwiz chat {result.name}[/bold]")
    _print_notes(console, result.modelfile)
    return 0


def _print_notes(console, modelfile: str) -> None:
    """The Modelfile's ``# note:`` lines (facts about BOS or thinking the user should know), on the terminal too."""
    for line in modelfile.splitlines():
        if line.startswith("# note: "):
            console.print(f"  note: {line[len('# note: '):]}", style="yellow", highlight=False, markup=False)
