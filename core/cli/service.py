"""``ftwiz service``: arguments and output; the unit writing and systemctl calls are ``ftwiz.core.deploy.service``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ftwiz.core.deploy.service import DEFAULT_PORT, install_service, uninstall_service


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ftwiz service install GGUF|RUN --name NAME [...]`` / ``ftwiz service uninstall NAME``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = sub.add_parser("install", help="serve a GGUF as a systemd user service (starts at login)")
    install.add_argument("model", metavar="GGUF|RUN", help="a .gguf file or an ftwiz run (its export/*.gguf)")
    install.add_argument("--name", help="service name (ftwiz-NAME.service; default: the run or file name)")
    install.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    install.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    install.add_argument("--n-ctx", type=int, help="context length in tokens (default: as `ftwiz serve` chooses)")
    install.add_argument("--api-key-file", type=Path, help="file with a line API_KEY=... (needed off loopback)")
    install.add_argument("--overwrite", action="store_true", help="replace an existing unit of that name")
    install.add_argument("--no-start", action="store_true", help="only write the unit; print the commands")
    install.add_argument("--force", action="store_true", help="serve a GGUF even if its `export --verify` failed")
    uninstall = sub.add_parser("uninstall", help="stop, disable and delete an ftwiz service")
    uninstall.add_argument("name")


def _gguf_of(model: str) -> Path:
    path = Path(model)
    if path.suffix == ".gguf" or path.is_file():
        return path
    from ftwiz.core.rundir import RunDir

    return RunDir.resolve(model).require_gguf()  # the run's own newest export, never its base copy


def run(args: argparse.Namespace) -> int:
    if args.action == "uninstall":
        uninstall_service(args.name)
        return 0
    gguf = _gguf_of(args.model)
    name = args.name or (gguf.stem if Path(args.model).suffix == ".gguf" else Path(args.model).name)
    install_service(gguf, name, host=args.host, port=args.port, api_key_file=args.api_key_file, n_ctx=args.n_ctx,
                    overwrite=args.overwrite, run=False if args.no_start else None, force_unverified=args.force)
    return 0
