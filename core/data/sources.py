"""From a recipe's dataset entries to normalised, validated conversations plus rejects.

Dataset entries may be paths, folders, globs, ``demo``, or names defined in a LLaMA-Factory
``dataset_info.json`` (``file_name``, ``formatting``, ``columns``, ``ranking``, ``tags``), so users
bring their existing definitions unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.data.column_map import explain_missing, refuse_absent_columns
from ftwiz.core.data.formats import FORMATS, apply_columns, detect_format, normalise
from ftwiz.core.data.loaders import expand_paths, json_record_lines, read_file
from ftwiz.core.data.near_placeholders import near_in_texts
from ftwiz.core.data.records import Conversation, RawRecord, RecordProblem, Reject
from ftwiz.core.data.validate import (
    check_conversation,
    conversation_placeholders,
    conversation_texts,
    fill_placeholders,
)
from ftwiz.core.errors import FtwizError, Location

DETECT_FROM = 20  # readable records whose keys decide the format
DETECT_FIX = ("name the format with --format (alpaca, sharegpt, openai, dpo, text) and map your columns with "
              "--column OURS=THEIRS, e.g. --column instruction=question (in a recipe: formatting: and columns:)")


@dataclass
class SourceSpec:
    path: str
    formatting: str = "auto"
    columns: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    sample_by: str = "line"  # .txt files: one record a line / paragraph / document (datasets' text builder)
    columns_from: str | None = None  # where `columns` was written, for messages; None: --column / a recipe's columns:


@dataclass
class LoadResult:
    conversations: list[Conversation] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    formats: dict[str, tuple[str, str]] = field(default_factory=dict)  # file -> (format, why)
    files: list[Path] = field(default_factory=list)
    unfilled_placeholders: set[str] = field(default_factory=set)
    placeholders: set[str] = field(default_factory=set)  # every {{name}} the kept records use, filled or not
    # '{{first-name}}' as written in kept records (no placeholder, trained as written) -> (first where, records)
    near_placeholders: dict[str, tuple[str, int]] = field(default_factory=dict)
    read: int = 0


def specs_from_dataset_info(names: list[str], dataset_dir: str | None, formatting: str,
                            columns: dict[str, str] | None, sample_by: str = "line") -> list[SourceSpec]:
    info: dict[str, Any] = {}
    dataset_dir = os.path.expanduser(dataset_dir) if dataset_dir else dataset_dir  # ~/data, as expand_paths reads
    info_path = Path(dataset_dir or ".") / "dataset_info.json"
    if dataset_dir and info_path.exists():
        info = _read_dataset_info(info_path)
    specs = []
    for name in names:
        entry = info.get(name)
        if entry is None:
            path = name if not dataset_dir or name == "demo" else str(Path(dataset_dir) / name)
            if info and not Path(path).exists() and not any(ch in name for ch in "*?["):  # a misspelled name
                import difflib

                close = difflib.get_close_matches(name, list(info), n=1)
                raise FtwizError(f"'{name}' is neither a dataset in {info_path.name} nor a file in {dataset_dir}",
                                 where=Location(file=info_path), fix=(f"did you mean '{close[0]}'? " if close else "")
                                 + f"its datasets: {', '.join(sorted(info)[:10])}" + (" ..." if len(info) > 10 else ""))
            specs.append(SourceSpec(path, formatting, columns, sample_by=sample_by))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name", ""), str):
            raise FtwizError(f"dataset '{name}' must be an object with a file_name, got {entry!r}",
                             where=Location(file=info_path, field=name),
                             fix=f'write it as "{name}": {{"file_name": "{name}.json"}}, as LLaMA-Factory does')
        for key in ("columns", "tags"):
            if not isinstance(entry.get(key, {}), dict):
                raise FtwizError(f"dataset '{name}' has {key} {entry[key]!r}; it must map names to names",
                                 where=Location(file=info_path, field=f"{name}.{key}"),
                                 fix=f'e.g. "{key}": {{"prompt": "instruction", "response": "output"}}'
                                 if key == "columns" else f'e.g. "{key}": {{"role_tag": "from"}}')
        _refuse_unknown_roles(info_path, name, entry.get("columns") or {})
        if "file_name" not in entry:
            raise FtwizError(f"dataset '{name}' has no file_name", where=Location(file=info_path, field=name),
                             fix="hub and script datasets are not supported offline; point file_name at a local file")
        fmt = entry.get("formatting", "alpaca")
        if fmt not in FORMATS:
            raise FtwizError(f"dataset '{name}' has formatting {fmt!r}", where=Location(file=info_path, field=f"{name}.formatting"),
                             fix=f"use one of {', '.join(FORMATS)}")
        if entry.get("ranking"):
            fmt = "dpo"
        # the entry's own "columns"; an entry without them takes --column / the recipe's columns: (it ignored them,
        # and the records were then rejected with 'map it with --column'). Not `columns`: the next name needs it
        entry_columns, origin = entry.get("columns"), f"{info_path.name}'s \"columns\" of '{name}'"
        if "columns" not in entry and columns:
            entry_columns, origin = columns, None
        if fmt == "alpaca" and isinstance(entry_columns, dict) and set(entry_columns) == {"prompt"}:
            # LLaMA-Factory's pre-training entries (c4_demo): only a prompt column, trained as plain text
            fmt, entry_columns = "text", {"text": entry_columns["prompt"]}
        specs.append(SourceSpec(str(Path(dataset_dir or ".") / entry["file_name"]), fmt, entry_columns,
                                entry.get("tags"), sample_by, columns_from=origin))
    return specs


def _refuse_unknown_roles(info_path: Path, name: str, columns: dict[str, Any]) -> None:
    """Refuse an entry's ``"columns"`` role that nothing reads (``"instrution": "question"``), as ``--column`` and
    a recipe's ``columns:`` are refused: the column was renamed to it and the records failed later with only the
    key. FtwizError naming the file, the line of the key where it is found, the entry and the key."""
    from ftwiz.core.column_roles import corrected_mapping, role_problem, roles_sentence

    for ours, theirs in columns.items():
        problem = role_problem(ours, str(theirs))
        if problem:
            role, column = corrected_mapping(ours, str(theirs))
            raise FtwizError(f"in the \"columns\" of dataset '{name}', {problem}; {roles_sentence()}",
                             where=Location(file=info_path, line=_key_line(info_path, name, ours),
                                            field=f"{name}.columns.{ours}"),
                             fix=f'write it as "{role}": {json.dumps(column, ensure_ascii=False)} in the "columns" '
                                 f"of '{name}'")


def _key_line(info_path: Path, entry: str, key: str) -> int | None:
    """The line of ``"key":`` after the line of ``"entry":`` in dataset_info.json (None when not found there)."""
    import re

    lines = info_path.read_bytes().decode("utf-8-sig").splitlines()
    start = next((n for n, text in enumerate(lines) if re.search(rf'"{re.escape(entry)}"\s*:', text)), None)
    if start is None:
        return None
    pattern = re.compile(rf'"{re.escape(key)}"\s*:')
    return next((n + 1 for n in range(start, len(lines)) if pattern.search(lines[n])), None)


def _read_dataset_info(info_path: Path) -> dict[str, Any]:
    """LLaMA-Factory's dataset_info.json: dataset name -> definition; FtwizError naming what is wrong."""
    from ftwiz.core.data.loaders import encoding_error

    try:
        info = json.loads(info_path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise encoding_error(info_path) from None
    except json.JSONDecodeError as exc:
        raise FtwizError(f"invalid JSON: {exc.msg}", where=Location(file=info_path, line=exc.lineno),
                         fix="fix dataset_info.json's syntax") from None
    if not isinstance(info, dict):
        raise FtwizError("dataset_info.json must map dataset names to their definitions",
                         where=Location(file=info_path), fix='e.g. {"my_data": {"file_name": "my_data.json"}}')
    return info


def _apply_tags(data: Any, tags: dict[str, str] | None) -> Any:
    """LLaMA-Factory ShareGPT tags: custom role/content keys and role names -> from/value with standard roles."""
    if not tags or not isinstance(data, dict):
        return data
    role_key, content_key = tags.get("role_tag", "from"), tags.get("content_tag", "value")
    names = {tags.get("user_tag", "human"): "human", tags.get("assistant_tag", "gpt"): "gpt",
             tags.get("system_tag", "system"): "system", tags.get("observation_tag", "observation"): "observation",
             tags.get("function_tag", "function_call"): "function_call"}
    for key in ("conversations", "messages"):
        if isinstance(data.get(key), list):
            data = dict(data)
            data["conversations"] = [  # other keys (tool_calls, tool_call_id, name) travel with the turn
                {**{k: v for k, v in t.items() if k not in (role_key, content_key)},
                 "from": names.get(t.get(role_key), t.get(role_key)), "value": t.get(content_key)}
                if isinstance(t, dict) else t for t in data.pop(key)]
    return data


def load_sources(specs: list[SourceSpec], *, variables: dict[str, str] | None = None) -> LoadResult:
    result = LoadResult()
    # files one mapping reaches (a glob, a folder, several paths): renaming a column for one reaches them all
    shared = sum(len(expand_paths(spec.path)) for spec in specs if spec.columns and not spec.columns_from)
    for spec in specs:
        for path in expand_paths(spec.path):
            result.files.append(path)
            unreadable = len(result.rejects)
            records: list[RawRecord] = list(read_file(path, result.rejects, spec.sample_by))
            if records:  # a mapping to a column no record has would otherwise do nothing, silently
                refuse_absent_columns((r.data for r in records), spec.columns, path, spec.columns_from,
                                      files=shared)
            prepared = [RawRecord(_apply_tags(apply_columns(r.data, spec.columns, spec.formatting), spec.tags), r.file, r.line, r.index)
                        for r in records]
            # lines that could not be read (broken JSON, bad UTF-8, extra CSV cells) were read too:
            # read = kept + rejected must add up for the user
            result.read += len(records) + len(result.rejects) - unreadable
            fmt, why = spec.formatting, "set explicitly"
            if not prepared:
                result.formats[str(path)] = ("unknown", "no record could be read")
                continue
            if fmt == "auto":
                try:
                    fmt, why = detect_format([r.data for r in prepared[:DETECT_FROM]])
                except RecordProblem as problem:
                    raise _unknown_format(problem, records, path) from None
            result.formats[str(path)] = (fmt, why)
            lines: list[int] | None = None
            for raw, record in zip(records, prepared, strict=True):
                try:
                    conv = normalise(record, fmt)
                    check_conversation(conv, fmt)
                except RecordProblem as problem:
                    problem = explain_missing(problem, raw.data, spec.columns, spec.columns_from)
                    if record.line is None and path.suffix == ".json":  # name the line, as for JSONL and CSV
                        lines = json_record_lines(path) if lines is None else lines
                        record.line = lines[record.index] if record.index < len(lines) else None
                    # the record as the file holds it (not renamed by columns/tags): what the user finds and fixes
                    result.rejects.append(Reject(record.file, record.line, record.index, problem.reason,
                                                 problem.message, problem.field, raw.data))
                    continue
                conv.source = record
                if variables is not None:
                    for text in near_in_texts(conversation_texts(conv)):  # before filling: a value's text is its own
                        where, count = result.near_placeholders.get(text, (record.where(), 0))
                        result.near_placeholders[text] = (where, count + 1)
                    result.placeholders |= conversation_placeholders(conv)
                    result.unfilled_placeholders |= fill_placeholders(conv, variables)
                result.conversations.append(conv)
    return result


def _unknown_format(problem: RecordProblem, records: list[RawRecord], path: Path) -> FtwizError:
    """The error for a file whose format its keys do not tell; a .json object that wraps the records under a
    key (``{"data": [...]}``, as many exports write) is said as such, since --format would not help it."""
    wrapped = [key for key, value in records[0].data.items()
               if isinstance(value, list) and value and all(isinstance(item, dict) for item in value)] \
        if len(records) == 1 and isinstance(records[0].data, dict) and path.suffix == ".json" else []
    if len(wrapped) == 1:
        import shlex

        key, count = wrapped[0], len(records[0].data[wrapped[0]])
        target = path.absolute().with_name(f"{path.stem}-records.json")
        # a command that works from any folder and with any file name: paths as Python literals, shell-quoted
        code = (f"import json; json.dump(json.load(open({json.dumps(str(path.absolute()))}, encoding=\"utf-8-sig\"))"
                f"[{json.dumps(key)}], open({json.dumps(str(target))}, \"w\"))")
        return FtwizError(f"the file is one JSON object whose records ({count}) are under the key {key!r}; ftwiz "
                          "reads a .json file as a list of records", where=Location(file=path, field=key),
                          fix=f"write the list to a file of its own and give that file ({target.name}) instead: "
                              f"`python -c {shlex.quote(code)}`")
    return FtwizError(problem.message, where=Location(file=path), fix=DETECT_FIX)
