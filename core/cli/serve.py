"""``ftwiz serve GGUF|RUN``: an OpenAI-compatible llama.cpp server on 127.0.0.1 until Ctrl-C.

Prints the base URL, the served model name, ready-to-paste curl / openai / LangChain snippets and, when
llama.cpp's own ``llama-server`` is installed, the equivalent command for it.
"""

from __future__ import annotations

import argparse

EPILOG = """examples:
  ftwiz serve my-run                                 the run's newest fine-tuned GGUF on 127.0.0.1
  ftwiz serve my-run --port 8080 --api-key secret
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="GGUF|RUN", help="a .gguf file or an ftwiz run (its export/*.gguf)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: only this machine; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", help="require this key as 'Authorization: Bearer KEY'")
    parser.add_argument("--n-ctx", type=int, help="context length in tokens (default: the model's context_length, at "
                        "most 4096, or the longer cutoff_len it was trained with)")
    parser.add_argument("--alias", help="model name clients send (default: the file name without .gguf)")
    parser.add_argument("--threads", type=int, help="CPU threads")
    parser.add_argument("--force", action="store_true", help="serve a GGUF even if its `export --verify` failed")


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ftwiz.core.cli.console import console, err_console
    from ftwiz.core.deploy.serve_step import serve_inputs
    from ftwiz.core.deploy.server import first_messages, snippets, start_server
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.gguf_info import read_gguf_info
    from rich.markup import escape

    # refuses a GGUF whose `export --verify` failed unless --force (the wizard's Serve goes through it too)
    inputs = serve_inputs(args.model, n_ctx=args.n_ctx, force_unverified=args.force)
    ref, context = inputs.ref, inputs.context
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        err_console.print(f"[yellow]warning:[/yellow] binding {args.host} without --api-key lets anyone on "
                          "your network use this model")
    console.print(f"starting llama.cpp server for {inputs.gguf.name}, context {context.n_ctx} tokens "
                  f"({escape(context.reason)}) ...", highlight=False)
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (e.g. from a service manager) stops as cleanly as Ctrl-C
    signal.signal(signal.SIGTERM, interrupt)
    handle = start_server(inputs.gguf, host=args.host, port=args.port, api_key=args.api_key, n_ctx=context.n_ctx,
                          model_alias=args.alias, n_threads=args.threads)
    try:
        system = ref.run_system_prompt()  # trained in front of every record: clients must send it (none is added)
        template = read_gguf_info(ref.target).chat_template if system else None
        text = snippets(handle, system=system, template=template)
        console.print(f"[green]ready[/green]  base URL [bold]{handle.base_url}[/bold]   model "
                      f"[bold]{handle.model_alias}[/bold]", highlight=False)
        if system:
            where = ("as the first message" if first_messages(system, template)[0]["role"] == "system" else
                     "in front of the first user message (its template has no system role; training put it there)")
            console.print(f"[yellow]note:[/yellow] trained with the system prompt {escape(repr(system))}; the "
                          f"server adds none, so send it {where}, as the snippets below do",
                          highlight=False, soft_wrap=True)
        import shutil

        titles = ["curl", "openai", "langchain"]
        if shutil.which("llama-server"):  # offer llama.cpp's own server only where it is installed
            titles.append("llama-server")
        for title in titles:
            console.rule(title, style="dim")
            console.print(text[title], highlight=False, markup=False, soft_wrap=True)
        # From here Ctrl-C/SIGTERM only set a flag: an exception raised at an arbitrary point could land inside
        # Popen.poll() while it holds the child's wait lock, and the stop below would then never reap the server.
        stopping = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        console.print("Ctrl-C to stop.", style="dim")
        while handle.alive():
            if stopping.wait(0.5):
                raise KeyboardInterrupt
        raise FtwizError(f"the server exited unexpectedly (code {handle.process.returncode}):\n{handle.log_tail()}")
    except KeyboardInterrupt:
        console.print("stopping ...")
        return 0
    finally:
        handle.stop()
        console.print("server stopped")
