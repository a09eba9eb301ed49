"""``ftwiz data check|prepare|preview|stats PATH``: see exactly what will be trained before training."""

from __future__ import annotations

import argparse
from pathlib import Path


def _pairs(values: list[str] | None, flag: str) -> dict[str, str] | None:
    from ftwiz.core.errors import FtwizError

    if not values:
        return None
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FtwizError(f"{flag} expects KEY=VALUE, got '{item}'", fix=f"e.g. {flag} instruction=question")
        out[key.strip()] = value.strip()
    if flag == "--column":  # a misspelled role was renamed to and read by nothing; the records failed much later
        import shlex

        from ftwiz.core.column_roles import corrected_mapping, role_problem, roles_sentence

        for ours, theirs in out.items():
            problem = role_problem(ours, theirs)
            if problem:
                role, column = corrected_mapping(ours, theirs)
                raise FtwizError(f"--column {shlex.quote(f'{ours}={theirs}')}: {problem}; {roles_sentence()}",
                                 where="--column", fix=f"e.g. --column {shlex.quote(f'{role}={column}')} (in a "
                                 f"recipe: columns: {{{role}: {column}}})")
    return out


def _var_values(items: list[str] | None) -> dict[str, str] | None:
    """``--var`` values as ``ftwiz train`` reads them (the value as typed), None when none were given."""
    from ftwiz.core.recipe_inputs import parse_var_values

    return parse_var_values(items) or None


EPILOG = """actions:
  check    read every record, report problems by line, save the rejects next to the file
  prepare  write train/validation/test splits (--out FOLDER)
  preview  one sample as the model sees it, with the learned (trained-on) tokens marked
  stats    token length statistics and steps per epoch

examples:
  ftwiz data check my-data.jsonl
  ftwiz data preview my-data.jsonl --model Qwen/Qwen2.5-0.5B-Instruct
  ftwiz data check identity.json --var name=Aria --var author=Sam
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check", "prepare", "preview", "stats"], help="see actions below")
    parser.add_argument("path", help="file, folder, glob, 'demo', or a name in --dataset-dir/dataset_info.json")
    parser.add_argument("--format", default="auto", choices=["auto", "alpaca", "sharegpt", "openai", "dpo", "text"])
    parser.add_argument("--column", action="append", metavar="OURS=THEIRS", help="map a column (repeatable)")
    parser.add_argument("--var", action="append", metavar="NAME=VALUE", help="fill {{NAME}} placeholders")
    parser.add_argument("--dataset-dir", help="folder holding a LLaMA-Factory dataset_info.json")
    parser.add_argument("--sample-by", choices=["line", "paragraph", "document"],
                        help=".txt files: one record a line (default), a blank-line-separated paragraph, or the file")
    parser.add_argument("--model", help="model whose tokenizer and chat template to use (default: demo); "
                        "with check, every record is also rendered with its chat template")
    parser.add_argument("--template", help="named template when the tokenizer has none (chatml, llama3, alpaca)")
    parser.add_argument("--cutoff-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16, help="effective batch, for steps per epoch")
    parser.add_argument("--index", type=int, default=0, help="which training sample to preview")
    parser.add_argument("--out", type=Path, help="prepare: folder for the splits (default: PATH.prepared/)")
    parser.add_argument("--overwrite", action="store_true", help="prepare: replace split files already in --out")
    parser.add_argument("--rejects", type=Path,
                        help="check: where rejects go (default: beside the data, data.jsonl -> data.rejects.jsonl)")
    parser.add_argument("--json", action="store_true")


# the recipe field each option fills, to name the option the user typed when its value is refused
_OPTION_OF = {"cutoff_len": "--cutoff-len", "template": "--template", "columns": "--column", "model_name_or_path": "--model"}


def _recipe(args: argparse.Namespace):
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.recipe import parse_recipe

    if args.batch_size < 1:
        raise FtwizError(f"--batch-size {args.batch_size} must be at least 1", where="--batch-size",
                         fix="give the effective batch training uses (micro-batch x accumulation), e.g. --batch-size 16")
    data = {"model_name_or_path": args.model or "demo", "dataset": [args.path], "formatting": args.format,
            "columns": _pairs(args.column, "--column"), "cutoff_len": args.cutoff_len, "template": args.template,
            "dataset_dir": args.dataset_dir, "sample_by": args.sample_by}
    try:
        return parse_recipe({k: v for k, v in data.items() if v is not None})
    except FtwizError as exc:  # "invalid recipe: 'cutoff_len' ... correct the keys" for a value typed as an option
        what = exc.what.replace("invalid recipe:", "invalid option:").replace("Value error, ", "")
        for field, option in _OPTION_OF.items():
            what = what.replace(f"'{field}'", option)
        raise FtwizError(what, fix="correct the option above; `ftwiz data --help` lists them") from None


def _check(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import console, print_json
    from ftwiz.core.data import check_dataset, write_rejects

    recipe = _recipe(args) if args.model else None
    tokenizer = _tokenizer(recipe) if recipe is not None else None
    report = check_dataset(args.path, formatting=args.format, columns=_pairs(args.column, "--column"),
                           variables=_var_values(args.var) or {}, dataset_dir=args.dataset_dir,
                           tokenizer=tokenizer, recipe=recipe, sample_by=args.sample_by or "line")
    _refuse_unused_vars(args, report.placeholders)  # a misspelled --var: refused before any file is written
    rejects_path = None
    if report.rejects:
        default = Path(report.files[0]).with_suffix(".rejects.jsonl") if report.files else Path("rejects.jsonl")
        rejects_path = write_rejects(report.rejects, _rejects_target(args.rejects, default, report.files))
    if args.json:
        print_json({"files": report.files, "formats": report.formats, "read": report.read, "kept": report.kept,
                    "rejected": report.rejected, "rejects_file": str(rejects_path) if rejects_path else None,
                    "unfilled_placeholders": report.unfilled_placeholders, "documents": report.documents,
                    "placeholder_like": report.near_placeholders, "special_token_text": report.special_text,
                    "over_cutoff": report.over_cutoff,
                    "problems": [r.to_json() | {"raw": None} for r in report.rejects]})
    else:
        from rich.markup import escape  # file names printed as they are: 'chats [v2].jsonl' is no style

        for file, (fmt, why) in report.formats.items():
            console.print(f"{escape(str(file))}: [bold]{fmt}[/bold] ({escape(why)})", highlight=False)
        console.print(f"records read {report.read}, kept [green]{report.kept}[/green], "
                      f"rejected [red]{len(report.rejects)}[/red]")
        if report.documents:  # raw text: long documents become consecutive blocks, nothing is cut
            from ftwiz.core.data.blocks import documents_line

            n = report.documents["documents"]
            console.print(documents_line(report.documents, report.cutoff_len or 0) if "blocks" in report.documents
                          else f"{n} raw-text document{'s' if n != 1 else ''}: one longer than cutoff_len is split "
                               "into consecutive blocks, no token cut (add --model to count the blocks)",
                          highlight=False)
        if report.over_cutoff:  # kept now, but training drops (or cuts) them: said before a run fails on it
            _print_over_cutoff(console, report)
        for reason, count in sorted(report.rejected.items()):
            console.print(f"  {reason}: {count}")
        for reject in report.rejects[:20]:
            place = f"line {reject.line}" if reject.line else f"record {reject.index}"
            field = f", field '{reject.field}'" if reject.field else ""
            console.print(f"  [red]x[/red] {escape(f'{reject.file}, {place}{field}: {reject.message}')}",
                          highlight=False)
        if len(report.rejects) > 20:
            console.print(f"  ... and {len(report.rejects) - 20} more")
        if rejects_path:
            console.print(f"rejected records (with reasons) saved to {rejects_path}; nothing was dropped silently",
                          markup=False)
        if report.unfilled_placeholders:
            names = ", ".join("{{" + n + "}}" for n in report.unfilled_placeholders)
            console.print(f"[yellow]warning[/yellow]: unfilled placeholders {names}: "
                          "fill them with --var name=VALUE", highlight=False)
        from ftwiz.core.cli.console import warn

        for line in report.near_placeholders + report.special_text:  # trained otherwise than the user may think
            warn(line, stderr=False)
    return 0 if report.usable else 1


def _rejects_target(given: Path | None, default: Path, inputs: list[str]) -> Path:
    """Where ``check`` writes its rejects: ``--rejects`` (a folder: the default name inside it), else beside the
    data; never one of the dataset's own files, which the rejects would replace."""
    from ftwiz.core.errors import FtwizError, Location

    target = default if given is None else given / default.name if given.is_dir() else given
    if any(target.resolve() == Path(name).resolve() for name in inputs):
        raise FtwizError(f"--rejects {target} is the dataset itself: the rejects would replace your data",
                         where=Location(field="--rejects"),
                         fix=f"leave --rejects out (they go to {default.name} beside the data), or name another file")
    return target


def _refuse_unused_vars(args: argparse.Namespace, used: list[str]) -> None:
    """FtwizError naming each --var that no {{NAME}} in the data uses (and the closest one that does)."""
    from ftwiz.core.recipe_inputs import refuse_unused_variables

    given = _var_values(args.var) or {}
    refuse_unused_variables(given, set(used), where=f"the data ({args.path})")
    from ftwiz.core.cli.console import warn
    from ftwiz.core.recipe_inputs import empty_var_warning

    for name in sorted(n for n, value in given.items() if value == "" and n in used):  # as ftwiz train says it
        warn(empty_var_warning(name))


def _print_over_cutoff(console, report) -> None:
    over = report.over_cutoff
    what = "training drops them (overlength: drop)" if over["dropped"] else \
        "training truncates them (overlength: truncate)"
    if over["dropped"] and over["dropped"] >= report.kept:
        what = "training drops them all and stops with nothing to train on (overlength: drop)"
    console.print(f"[yellow]warning[/yellow]: {over['over_cutoff']} of {report.kept} records are longer than "
                  f"cutoff_len {report.cutoff_len} tokens: {what}; raise --cutoff-len (a recipe's cutoff_len) "
                  "or set `overlength: truncate`", highlight=False)


def _tokenizer(recipe):
    from ftwiz.core.recipe_inputs import tokenizer_for

    return tokenizer_for(recipe)  # the tokenizer training and the wizard's data step use


def _preview(args: argparse.Namespace, recipe, tokenizer, prepared) -> None:
    """The training record at --index (the next one the template renders), masked as training masks it."""
    from ftwiz.core.cli.console import console, print_json
    from ftwiz.core.cli.preview_render import render_pair, render_preview
    from ftwiz.core.data.pair_view import PairView, is_pair, pair_view
    from ftwiz.core.data.preview import sample_view
    from ftwiz.core.data.render import TemplateRefused
    from ftwiz.core.data.template import chat_template_of
    from ftwiz.core.errors import FtwizError

    template = chat_template_of(tokenizer, recipe.template, enable_thinking=getattr(recipe, "enable_thinking", None))
    records, origins = prepared.splits["train"], prepared.origins.get("train", [])
    if not 0 <= args.index < len(records):
        raise FtwizError(f"--index {args.index} is outside the {len(records)} training records",
                         fix=f"give --index between 0 and {len(records) - 1}")
    for i in range(args.index, len(records)):
        label = origins[i] if i < len(origins) else f"training record {i}"
        try:
            # a preference pair shows both answers, each masked as the DPO/ORPO/KTO trainers score it
            view = (pair_view(tokenizer, template, records[i], recipe, record_label=label) if is_pair(records[i])
                    else sample_view(tokenizer, template, records[i], recipe, record=label))
            break
        except TemplateRefused:
            continue  # rejected with its line in the counts below; show the next record
    else:
        raise FtwizError("the chat template renders none of the training records from --index on",
                         fix="run `ftwiz data check PATH --model MODEL` to see each refusal with its line")
    if args.json:
        print_json(view.to_json(tokenizer))
    elif isinstance(view, PairView):
        render_pair(console, tokenizer, view)
    else:
        render_preview(console, tokenizer, view)


def _prepared(args: argparse.Namespace):
    from ftwiz.core.cli.console import say, warn
    from ftwiz.core.events import EventBus
    from ftwiz.core.recipe_inputs import prepare_dataset

    def _warn(event) -> None:  # what training says about the same data (records left out and why), said here too
        if event.type == "message" and event.level == "warning":  # on stderr under --json (stdout: one document)
            warn(event.text, stderr=bool(args.json))
        elif event.type == "message":
            say(event.text, stderr=bool(args.json))

    recipe = _recipe(args)
    tokenizer = _tokenizer(recipe)
    return recipe, tokenizer, prepare_dataset(recipe, tokenizer=tokenizer, variables=_var_values(args.var) or {},
                                              events=EventBus([_warn]))


def run(args: argparse.Namespace) -> int:
    from ftwiz.core.cli.console import console, print_json
    from ftwiz.core.cli.preview_render import render_stats
    from ftwiz.core.data.preview import tokenizer_label

    if args.action == "check":
        return _check(args)
    if args.action == "prepare" and args.out is not None and args.out.is_file():  # said before any tokenizing
        from ftwiz.core.data.pipeline import refuse_file_as_out

        refuse_file_as_out(args.out)
    recipe, tokenizer, prepared = _prepared(args)
    _refuse_unused_vars(args, prepared.placeholders)
    if args.action == "prepare":
        out = args.out or Path(f"{Path(args.path).name}.prepared")
        prepared.save_splits(out, overwrite=args.overwrite)  # --out may be the user's own data folder
        console.print(f"wrote train/validation/test splits, rejects and stats to {out}", markup=False)
    elif args.action == "preview":
        _preview(args, recipe, tokenizer, prepared)
        if not args.json:
            render_stats(console, prepared, recipe.cutoff_len, args.batch_size)
    elif args.json:
        stats = {k: v for k, v in prepared.stats.items()}
        for split in ("train", "validation"):
            if isinstance(stats.get(split), dict):
                stats[split] = {k: v for k, v in stats[split].items() if k != "lengths"}
        print_json(stats | {"tokenizer": tokenizer_label(tokenizer)})
    else:
        console.print(f"lengths measured with the tokenizer of {recipe.model_name_or_path}: "
                      f"{tokenizer_label(tokenizer)}", highlight=False, markup=False)
        render_stats(console, prepared, recipe.cutoff_len, args.batch_size)
    return 0
