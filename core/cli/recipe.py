"""``ftwiz recipe validate FILE`` and ``ftwiz recipe new [FILE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    validate = sub.add_parser("validate", help="check a recipe against the schema")
    validate.add_argument("file", type=Path)
    new = sub.add_parser("new", help="write a commented template with every key")
    new.add_argument("file", type=Path, nargs="?", help="where to write it (default: print it)")
    new.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.atomic import atomic_path
    from ftwiz.core.cli.console import console, say
    from ftwiz.core.recipe import load_recipe, recipe_template

    if args.action == "validate":
        from ftwiz.core.chat_templates.validate import check_template_file, template_warnings
        from ftwiz.core.recipe_inputs import check_dataset_paths, check_recipe_columns, filled_system

        recipe = load_recipe(args.file)
        check_dataset_paths(recipe, recipe_file=str(args.file))  # a schema-valid recipe can still point nowhere
        check_recipe_columns(recipe, args.file)  # ... or map a column its data does not have
        check_template_file(recipe, args.file)  # train would fail on a missing template file
        if recipe.adapter_name_or_path:  # the checks train makes before a run folder: an adapter that fits
            from ftwiz.core.train.adapter_check import check_recipe_adapter

            check_recipe_adapter(recipe, recipe_file=args.file)
        warnings = template_warnings(recipe)  # the warnings train prints, before a run is started
        _system, missing = filled_system(recipe)
        if missing and not recipe.allow_placeholders:  # train refuses them unless --var gives their values
            warnings.append("system: " + ", ".join("{{" + n + "}}" for n in missing) + " has no value under "
                            "variables:, so `ftwiz train` refuses it unless given with "
                            + " ".join(f"--var {n}=VALUE" for n in missing))
        from ftwiz.core.recipe_inputs import edited_stored_system

        edited = [] if recipe.allow_placeholders else edited_stored_system(recipe)
        if edited:  # a copy of a run's recipe.yaml given a new {{name}}: train refuses it
            warnings.append("system: " + ", ".join("{{" + n + "}}" for n in edited) + " is kept as written "
                            "(system_filled: true), so `ftwiz train` refuses it; delete the system_filled line to "
                            "fill it from variables:")
        if not recipe.system_filled:  # '{{first-name}}' is trained as written (a stored, filled prompt was said)
            from ftwiz.core.data.near_placeholders import system_warnings

            warnings += system_warnings(recipe.system, recipe_file=str(args.file))
        for text in warnings:
            console.print(f"warning: {text}", style="yellow", highlight=False, markup=False)
        say(("ok", "green"), f" {args.file}: {recipe.finetuning_type} on {recipe.model_name_or_path}, "
            f"data {', '.join(recipe.dataset)}, chat template {_template_words(recipe.template)}")  # brackets kept
        return 0
    text = recipe_template()
    if args.file is None:
        sys.stdout.write(text)
        return 0
    with atomic_path(args.file, overwrite=args.overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    say(f"wrote {args.file}; edit it, then `ftwiz recipe validate {args.file}`")  # 'r [v2].yaml' printed as it is
    return 0


def _template_words(value: str | None) -> str:
    """How validate names the chat template (unknown names never get here: the recipe refuses them)."""
    from ftwiz.core.chat_templates.record import template_kind

    if value is None:
        return "of the model"
    kind = template_kind(value)
    return {"named": f"'{value}'", "file": f"from {value}", "inline": "given as Jinja text"}[kind]
