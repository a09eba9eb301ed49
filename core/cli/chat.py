"""``ftwiz chat MODEL``: a streaming terminal chat with a GGUF, an Ollama model or a run.

``--once "prompt"`` answers one prompt and exits (scripts, tests, the demo). ``--compare BASE`` asks the
base model the same prompt and shows both answers side by side. Slash commands: /reset, /save PATH,
/system TEXT, /temperature X, /help, /exit.
"""

from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  ftwiz chat my-run                                  the run's newest fine-tuned GGUF
  ftwiz chat my-run --once "Hello"                   one answer, then exit
  ftwiz chat my-run --compare runs/my-run/base/base-Q8_0.gguf   side by side with the base model
  ftwiz chat my-model                                an Ollama model by name
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .gguf file, an ftwiz run, or an Ollama model name")
    parser.add_argument("--system", help="system prompt (default for a run: its recipe's system)")
    parser.add_argument("--temperature", type=float, default=0.7, help="0 = deterministic (default 0.7)")
    parser.add_argument("--max-tokens", type=int, default=512, help="longest answer in tokens")
    parser.add_argument("--seed", type=int, help="sampling seed, for repeatable answers")
    parser.add_argument("--compare", metavar="BASE", help="also ask BASE (GGUF, run or Ollama name), side by side")
    parser.add_argument("--once", metavar="PROMPT", help="answer PROMPT and exit")
    parser.add_argument("--host", help="Ollama URL for Ollama models")
    parser.add_argument("--n-ctx", type=int, help="context length in tokens (a GGUF: as `ftwiz serve` chooses; "
                        "an Ollama model: its num_ctx)")
    parser.add_argument("--threads", type=int, help="CPU threads for GGUFs")
    parser.add_argument("--force", action="store_true", help="chat with a GGUF even if its `export --verify` failed")


def _session(model: str, args: argparse.Namespace, system: str | None = None):
    from ftwiz.core.deploy.chat import ChatSession, resolve_chat_model

    ref = resolve_chat_model(model)
    system = args.system if system is None else system
    if system is None:  # a run chats with the system prompt it was trained with
        system = ref.run_system_prompt()
    return ChatSession(model, system=system, temperature=args.temperature, max_tokens=args.max_tokens,
                       seed=args.seed, host=args.host, n_ctx=args.n_ctx, n_threads=args.threads,
                       # a GGUF proven unlike its model is refused (in the core, as in the wizard) unless --force
                       force_unverified=getattr(args, "force", False))


def _answer(session, text: str, console) -> None:
    """Stream one answer to the terminal as it is generated.

    The 'model>' label comes with the answer's first piece: a request refused before any token (a conversation
    past the context, a stopped Ollama) prints its error alone, not after a label as if the model had said it.
    """
    labelled = False

    def label() -> None:
        nonlocal labelled
        console.print(f"[bold cyan]{session.label}>[/bold cyan] ", end="", highlight=False)
        labelled = True

    try:
        for piece in session.stream_reply(text):
            if not labelled:
                label()
            console.out(piece, end="", highlight=False)
            console.file.flush()
        if not labelled:  # an empty answer still shows that the model answered
            label()
    finally:  # an error mid-answer is printed on a line of its own, not after the answer's text
        if labelled:
            console.out("")
    if session.last_finish_reason == "length":
        console.print("[dim](cut at --max-tokens)[/dim]")


def _compare(tuned, base, text: str, console) -> None:
    from rich.columns import Columns
    from rich.panel import Panel

    answers = [(s.label, s.reply(text)) for s in (base, tuned)]
    titles = ["base: ", "fine-tuned: "]
    console.print(Columns([Panel(answer or "(no answer)", title=title + label, expand=True)
                           for title, (label, answer) in zip(titles, answers, strict=True)], equal=True, expand=True))


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import console
    from ftwiz.core.errors import FtwizError

    session = _session(args.model, args)
    # the base is asked exactly what the fine-tune is asked, system prompt included (as the wizard's compare and
    # ftwiz eval do): a base without it answers a different question. A fine-tune with none asks the base with
    # none ("" is no system turn), not the one a run or GGUF given as BASE records for itself
    base = _session(args.compare, args, system=session.system or "") if args.compare else None
    try:
        if args.once is not None:
            if base:
                _compare(session, base, args.once, console)
            else:
                for piece in session.stream_reply(args.once):
                    sys.stdout.write(piece)
                    sys.stdout.flush()
                sys.stdout.write("\n")
            return 0
        console.print(f"chatting with [bold]{session.label}[/bold]"
                      + (f" vs base [bold]{base.label}[/bold]" if base else "")
                      + "  (/help for commands, Ctrl-D to leave)", highlight=False)
        context = getattr(session.backend, "context", None)  # llama.cpp's window; Ollama's when --n-ctx is given
        if context is not None:
            console.print(f"context {context.n_ctx} tokens: {context.reason}", style="dim", highlight=False,
                          markup=False)
        while True:
            try:
                line = console.input("[bold green]you>[/bold green] ")
            except EOFError:
                console.print()
                return 0
            if not sys.stdin.isatty():  # piped questions: the transcript shows each, as a terminal's echo would
                console.out(line, highlight=False)
            if not line.strip():
                continue
            result = session.run_command(line)
            if result is not None:
                if base and line.startswith(("/reset", "/system", "/temperature")):
                    base.run_command(line)
                console.print(result.message, style="dim", highlight=False, markup=False)
                if result.exit:
                    return 0
                continue
            try:
                if base:
                    _compare(session, base, line, console)
                else:
                    _answer(session, line, console)
            except KeyboardInterrupt:
                console.print("\n[dim](answer interrupted)[/dim]")
            except FtwizError as exc:  # the chat goes on, so the fix (e.g. /reset) is what to type next
                console.print(f"[red]error:[/red] {exc.what}", highlight=False)
                if exc.fix:
                    console.print(f"  fix: {exc.fix}", highlight=False, markup=False)
    finally:
        session.close()
        if base:
            base.close()
