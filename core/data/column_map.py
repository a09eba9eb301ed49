"""Column mappings (``--column OURS=THEIRS``, a recipe's ``columns:``, dataset_info.json's ``"columns"``) checked
against the records they apply to, so a mapping never silently does nothing.

The rule follows LLaMA-Factory, whose converters read ``example[column]`` for every mapped column:

- a mapped column that no record of a file has is refused for the whole file (LLaMA-Factory stops with a
  ``KeyError``), naming the mapping, the column, the file and the columns its records do have;
- a mapped column missing from only some records reads as absent in those records (LLaMA-Factory's ``datasets``
  fills it with ``None``): the record's own field of our name is *not* used instead, so a required field
  (``instruction``, ``output``, ``conversations``...) rejects that record with its line, and an optional one
  (``system``, ``input``, ``history``, ``tools``) is left out.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ftwiz.core.data.formats import LF_COLUMNS
from ftwiz.core.data.records import RecordProblem
from ftwiz.core.errors import FtwizError, Location

SHOWN_COLUMNS = 20  # columns listed in a message before '...'


def mapping_label(ours: str, theirs: str, origin: str | None, recipe_file: str | Path | None = None) -> str:
    """How the user wrote one mapping: the CLI flag and the recipe key, the dataset_info.json entry, or (known to
    come from one) the recipe file's key."""
    if origin:
        return f'{origin} ("{ours}": "{theirs}")'
    if recipe_file is not None:
        return f"{recipe_file}'s columns: {{{ours}: {theirs}}}"
    return f"--column {ours}={theirs} (in a recipe: columns: {{{ours}: {theirs}}})"


def _listed(columns: Iterable[str]) -> str:
    names = sorted(columns)
    shown = ", ".join(names[:SHOWN_COLUMNS]) + (" ..." if len(names) > SHOWN_COLUMNS else "")
    return shown or "none"


def refuse_absent_columns(rows: Iterable[Any], columns: Mapping[str, str] | None, path: Path,
                          origin: str | None, recipe_file: str | Path | None = None, *, files: int = 1) -> None:
    """Raise FtwizError when a mapped column is in no record of ``path`` (``rows``: the records' decoded data).

    Plain-text records (not JSON objects) have no columns, so any mapping on them is refused too. ``recipe_file``:
    the recipe whose ``columns:`` these are (``origin`` None), named instead of the flag. ``files``: how many
    dataset files that recipe's ``columns:`` applies to; above one, the fix says that renaming it reaches them all.
    """
    if not columns:
        return
    seen: set[str] = set()
    for data in rows:
        if isinstance(data, dict):
            seen.update(str(key) for key in data)
    for ours, theirs in columns.items():
        if theirs in seen:
            continue
        have = (f"its records have the columns {_listed(seen)}" if seen
                else "its records are plain text, with no named columns")
        field = ours if LF_COLUMNS.get(ours, ours) == ours else f"{ours} (ftwiz's '{LF_COLUMNS[ours]}')"
        header = next(iter(seen)) if len(seen) == 1 and path.suffix.lower() == ".csv" else ""
        if ";" in header:  # a spreadsheet's semicolon-separated export read as CSV (commas): one column
            raise FtwizError(f"{mapping_label(ours, theirs, origin, recipe_file)}: {path.name}'s header '{header}' is one column, "
                             "so its values are separated by ';', not the commas a CSV file has",
                             where=Location(file=path, line=1), fix="save it as comma-separated CSV (in a spreadsheet: "
                             "CSV, comma-delimited), as LLaMA-Factory reads it too")
        raise FtwizError(f"{mapping_label(ours, theirs, origin, recipe_file)} maps '{field}' to the column '{theirs}', "
                         "which no "
                         f"record of {path.name} has; {have}", where=Location(file=path, field=f"columns.{ours}"),
                         fix=(f"name one of those columns (e.g. {_written(ours, _example(theirs, seen, _taken(columns, ours)), origin, recipe_file)}), "
                              "or drop the mapping" if seen else "drop the mapping, or point it at a JSON/JSONL/CSV file")
                         + (_per_file_columns(files, recipe_file is not None) if origin is None else ""))


def _per_file_columns(files: int, in_recipe: bool) -> str:
    """What to do when one ``columns:`` (``in_recipe``) or set of ``--column`` flags cannot fit each of its files."""
    if files < 2:
        return ""
    if not in_recipe:  # a glob, a folder or several paths given to ftwiz data
        return (f"; --column applies to all {files} dataset files given: where their columns differ, check each file "
                "with its own --column, or give each a dataset_info.json entry with its own \"columns\"")
    return (f"; columns: applies to all {files} dataset files of the recipe: where their columns differ, give each "
            "file a dataset_info.json entry with its own \"columns\" and list the entries under dataset:")


def _written(ours: str, theirs: str, origin: str | None, recipe_file: str | Path | None = None) -> str:
    """The corrected mapping as the user writes it where it came from: a dataset_info.json entry (a --column flag
    does not reach a named entry), the recipe file's key, else the flag, shell-quoted (a column name may hold
    spaces)."""
    if origin:
        return f"{json.dumps(ours)}: {json.dumps(theirs, ensure_ascii=False)} in {origin}"
    if recipe_file is not None:
        return f"columns: {{{ours}: {theirs}}} in {recipe_file}"
    return "--column " + shlex.quote(f"{ours}={theirs}")


def _taken(columns: Mapping[str, str], ours: str) -> set[str]:
    """The columns the mapping already gives to fields other than ``ours``."""
    return {theirs for field, theirs in columns.items() if field != ours}


def _example(theirs: str, seen: set[str], taken: set[str] = frozenset()) -> str:
    """The existing column closest to the mistyped one, for the fix; a column ``taken`` by another field of the
    mapping only when no other is left (naming it would read one column into two fields)."""
    import difflib

    free = sorted(seen - taken) or sorted(seen)
    close = difflib.get_close_matches(theirs, free, n=1, cutoff=0.5)
    return close[0] if close else free[0]


def explain_missing(problem: RecordProblem, data: Any, columns: Mapping[str, str] | None,
                    origin: str | None) -> RecordProblem:
    """A record rejected for a missing field that the mapping renamed: say it is the mapped column that is missing
    in this record (its own field of our name was not used), not that the column needs mapping."""
    if problem.reason != "missing_field" or not columns or not isinstance(data, dict):
        return problem
    for ours, theirs in columns.items():
        if LF_COLUMNS.get(ours, ours) == problem.field and theirs not in data:
            return RecordProblem("missing_field", f"the column '{theirs}' is missing from this record, and "
                                 f"{mapping_label(ours, theirs, origin)} takes '{problem.field}' from it (the record "
                                 f"has {_listed(str(k) for k in data)}; its own '{problem.field}' is not used)", theirs)
    return problem


FIRST_RECORDS = 100  # records a recipe check reads from each file before looking further


def refuse_absent_recipe_columns(specs: Iterable[Any], recipe_file: str | Path) -> None:
    """``ftwiz recipe validate``'s check of a recipe's ``columns:`` (and dataset_info.json entries' own
    ``"columns"``) against its dataset files, with the loader's own reader (``loaders.read_file``).

    ``specs``: ``sources.SourceSpec`` of the recipe's datasets (paths already checked to exist). Only the first
    FIRST_RECORDS records of a file are read when they hold every mapped column; when one is missing there the rest
    of the file is read before refusing, as training (which reads it all) would refuse it. Lines the reader cannot
    decode are skipped (`ftwiz data check` reports them). Raises FtwizError naming the recipe file, the key and the
    dataset file, listing the columns its records have.
    """
    from contextlib import closing
    from itertools import islice

    from ftwiz.core.data.loaders import expand_paths, read_file

    specs = list(specs)
    shared = sum(len(expand_paths(spec.path)) for spec in specs if spec.columns and not spec.columns_from)
    for spec in specs:
        if not spec.columns:
            continue
        for path in expand_paths(spec.path):
            with closing(read_file(path, [], spec.sample_by)) as records:  # a JSONL file is closed unread to its end
                rows = [r.data for r in islice(records, FIRST_RECORDS)]
                seen = {str(key) for data in rows if isinstance(data, dict) for key in data}
                if rows and not set(spec.columns.values()) <= seen:  # the rest is read before refusing the file
                    rows += [r.data for r in records]
            if rows:  # nothing readable: training says so, by line
                refuse_absent_columns(rows, spec.columns, path, spec.columns_from, recipe_file, files=shared)
