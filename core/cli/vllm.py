"""``ftwiz vllm``: arguments and output; the sizing and the merged export are ``ftwiz.core.scale.vllm``."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from ftwiz.core.scale.vllm import export_for_vllm, missing_stops, run_first_messages, vllm_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ftwiz vllm MODEL|RUN [--export OUT] [--gpu-memory-gb N] [--adapter DIR] [--port P]``."""
    parser.add_argument("source", metavar="MODEL|RUN", help="a run, a Hugging Face model folder, or 'demo'")
    parser.add_argument("--export", type=Path, metavar="OUT",
                        help="write a merged 16-bit folder with vllm-serve.sh here")
    parser.add_argument("--gpu-memory-gb", type=float, help="size the context for a GPU with this much memory")
    parser.add_argument("--adapter", type=Path, help="serve this LoRA adapter on top (--enable-lora)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--overwrite", action="store_true", help="with --export: replace OUT")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.errors import FtwizError

    # checked before --export merges anything: a port vLLM cannot bind, or "does not fit a -3 GB GPU"
    if not 1 <= args.port <= 65535:
        raise FtwizError(f"--port {args.port} is not a TCP port", where="--port", fix="use 1024-65535, e.g. 8000")
    if args.gpu_memory_gb is not None and not 0 < args.gpu_memory_gb <= 4096:
        raise FtwizError(f"--gpu-memory-gb {args.gpu_memory_gb:g} is not a plausible amount of GPU memory",
                         where="--gpu-memory-gb", fix="give the card's memory in GB, e.g. --gpu-memory-gb 24")
    source = args.source
    if args.export:
        out = export_for_vllm(source, args.export, overwrite=args.overwrite)
        print(f"wrote {out} (serve it with {out / 'vllm-serve.sh'})")
        source = out
    print(shlex.join(vllm_command(source, gpu_memory_gb=args.gpu_memory_gb, adapter_dir=args.adapter,
                                  port=args.port)))
    system, messages = run_first_messages(args.source)
    if system:
        print(f"note: the run was trained with the system prompt {system!r}; vLLM adds none, so send "
              f"{json.dumps(messages[0])} first in each request")
    missing = missing_stops(source, args.adapter)
    if missing:
        print(f"note: the model folder's generation_config.json does not declare {list(missing.values())} as end "
              f"tokens, so vLLM would not stop there: export with --export OUT (ftwiz writes them), or send "
              f'"stop_token_ids": {list(missing)} with each request')
    return 0
