"""The headless CLI: one verb per core entry point.

Each verb lives in its own module ``ftwiz.core.cli.<verb>`` exposing ``add_arguments(parser)`` and
``run(args) -> int``. Only the chosen verb's module is imported, and verb modules import torch and
friends inside ``run``, so ``ftwiz --help`` answers in a fraction of a second.

Exit status: 0 success, 1 a check failed (e.g. verify found a mismatch), 2 a user-fixable error
(bad input, missing file), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# verb -> (module, one-line help). The wizard itself is started by the launcher in ftwiz.tui.
VERBS: dict[str, tuple[str, str]] = {
    "doctor": ("ftwiz.core.cli.doctor", "detect GPU, drivers, memory, disk and backends; say what to fix"),
    "pull": ("ftwiz.core.cli.pull", "download a base model (Hugging Face Hub, a mirror, ModelScope), checked first"),
    "plan": ("ftwiz.core.cli.plan", "estimate memory and recommend method, batch and length for a model"),
    "data": ("ftwiz.core.cli.data", "check, prepare, preview or summarise a dataset"),
    "train": ("ftwiz.core.cli.train", "fine-tune from a recipe (QLoRA, LoRA or full) with live progress"),
    "merge": ("ftwiz.core.cli.merge", "merge a LoRA adapter into its 16-bit base model"),
    "export": ("ftwiz.core.cli.export", "convert a model or run to GGUF, quantize and verify"),
    "register": ("ftwiz.core.cli.register", "register a GGUF with Ollama (Modelfile, template, stop tokens)"),
    "serve": ("ftwiz.core.cli.serve", "serve a GGUF through an OpenAI-compatible llama.cpp server"),
    "chat": ("ftwiz.core.cli.chat", "chat with a GGUF, an Ollama model or a run in the terminal"),
    "models": ("ftwiz.core.cli.models", "list, show or remove models ftwiz exported"),
    "eval": ("ftwiz.core.cli.eval", "held-out metrics and base-vs-tuned comparison"),
    "demo": ("ftwiz.core.cli.demo", "the whole pipeline on the embedded tiny model, offline, on CPU"),
    "clean": ("ftwiz.core.cli.clean", "list and remove leftovers of interrupted jobs (.partial files), with sizes"),
    "recipe": ("ftwiz.core.cli.recipe", "validate a recipe or write a commented new one"),
    "completion": ("ftwiz.core.cli.completion", "print or install shell completion (bash, zsh, fish)"),
    "service": ("ftwiz.core.cli.service", "keep a GGUF served as a systemd user service"),
    "vllm": ("ftwiz.core.cli.vllm", "serve a run with vLLM: a sized command, or a merged folder (--export)"),
}

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

# Process environment a verb needs set before numpy loads. An export does no linear algebra in numpy (the
# arithmetic is ggml's, on ftwiz's own worker threads), yet numpy's OpenBLAS starts a thread per core at
# import, and those threads spin: 0.13 CPU-s of a one-second export, taken from the conversion's cores.
VERB_ENVIRONMENT: dict[str, dict[str, str]] = {"export": {"OPENBLAS_NUM_THREADS": "1"}}


def _version_text() -> str:
    from ftwiz.core.versions import stack_versions

    lines = [f"ftwiz {stack_versions()['ftwiz']}"]
    lines += [f"  {name} {version}" for name, version in stack_versions().items() if name != "ftwiz"]
    return "\n".join(lines)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftwiz",
        description="Fine-tune a language model on one GPU, or none, and chat with it offline. "
        "Run `ftwiz` with no verb to open the wizard.",
    )
    parser.add_argument("--version", action="store_true", help="show ftwiz and stack versions and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    from ftwiz.core.cli import wizard

    wizard_parser = sub.add_parser("wizard", help="open the terminal wizard (the same as `ftwiz` with no verb)",
                                   description=wizard.DESCRIPTION, epilog=wizard.EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    wizard.add_arguments(wizard_parser)
    for name, (module_name, help_text) in VERBS.items():
        if name != verb:
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        module = importlib.import_module(module_name)
        # EPILOG: each verb's examples, shown under its options by `ftwiz VERB --help`
        verb_parser = sub.add_parser(name, help=help_text, description=help_text, epilog=getattr(module, "EPILOG", None),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(verb_parser)
    return parser


def _chosen_verb(argv: Sequence[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in VERBS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from ftwiz.core.errors import FtwizError

    # ftwiz draws its own progress; the libraries' tqdm bars would interleave with it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import warnings

    # Deprecation notices between our dependencies (e.g. peft calling an old transformers name) are for
    # their maintainers, not for someone fine-tuning a model.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|trl|accelerate)\.")
    from ftwiz.core.cli.library_notices import quiet_library_notices

    quiet_library_notices()
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = _chosen_verb(argv)
    for name, value in VERB_ENVIRONMENT.get(verb or "", {}).items():
        os.environ.setdefault(name, value)  # before the verb's module imports numpy; the user's own setting wins
    parser = build_parser(verb)
    args = parser.parse_args(argv)
    if args.version:
        print(_version_text())
        return EXIT_OK
    if args.verb is None:
        parser.print_help()
        return EXIT_OK
    module = importlib.import_module(VERBS[args.verb][0])
    if args.verb in ("plan", "train", "data", "export", "merge", "eval", "vllm"):  # verbs that may build 'demo'
        from ftwiz.core.cli.demo_build import show_demo_builds

        show_demo_builds()
    try:
        return int(module.run(args) or 0)
    except FtwizError as exc:
        from ftwiz.core.cli.console import print_error

        print_error(exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        from ftwiz.core.interrupted import interrupted_message

        print("\n" + interrupted_message(argv), file=sys.stderr)
        return EXIT_INTERRUPTED
