"""Read dataset files into :class:`RawRecord` s: JSON, JSONL, CSV/TSV, Parquet, folders, globs.

Problems that make a *line* unreadable (invalid UTF-8, broken JSON, duplicate keys) become rejects for
that line only; the rest of the file is still read. Problems that make the *file* unreadable raise
FtwizError naming the file.
"""

from __future__ import annotations

import codecs
import csv
import glob
import itertools
import json
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ftwiz.core.data.records import RawRecord, Reject
from ftwiz.core.errors import FtwizError, Location

SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt")


class DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"duplicate key '{key}'")
        seen[key] = value
    return seen


def demo_dataset_path() -> Path:
    return Path(str(resources.files("ftwiz.recipes").joinpath("demo", "demo.jsonl")))


def expand_paths(spec: str, dataset_dir: str | None = None) -> list[Path]:
    """A file, a folder (every supported file inside), a glob, or ``demo``; a leading ``~`` is the home folder, as
    for a recipe's model, template and adapter (a recipe's ``dataset: ~/data.jsonl`` was 'not found')."""
    if spec == "demo":
        return [demo_dataset_path()]
    spec = os.path.expanduser(spec)
    base = Path(dataset_dir).expanduser() if dataset_dir else None
    path = Path(spec) if Path(spec).is_absolute() or base is None else base / spec
    if any(ch in spec for ch in "*?[") and not path.exists():  # 'chats [v2].jsonl' that exists is no pattern
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if p.endswith(SUFFIXES)
                         and Path(p).is_file())
        if not matches:
            raise FtwizError(f"no dataset files match '{spec}'", fix=_no_match_fix(path))
        return matches
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.name != "dataset_info.json"
                       and not p.name.endswith(".rejects.jsonl") and p.is_file())  # not a folder named x.jsonl
        if any(p.suffix != ".txt" for p in files):  # a README.txt beside JSON data is not training text
            files = [p for p in files if p.suffix != ".txt"]
        if not files:
            raise FtwizError(f"folder {path} holds no dataset files", fix=f"put {', '.join(SUFFIXES)} files in it")
        return files
    if not path.exists():
        raise FtwizError(f"dataset not found: {path}", fix="check the path (relative paths start where you run ftwiz)")
    if path.suffix not in SUFFIXES:
        raise FtwizError(f"unsupported dataset file type '{path.suffix}'", where=Location(file=path),
                         fix=f"convert it to one of {', '.join(SUFFIXES)}")
    return [path]


def _no_match_fix(pattern: Path) -> str:
    """What to check when a dataset pattern matches no file ftwiz reads: the folder it searches, else what it
    does match, else the file types ftwiz reads."""
    folder = Path(*[part for part in itertools.takewhile(lambda p: not any(ch in p for ch in "*?["), pattern.parts)])
    supported = f"ftwiz reads files ending in {', '.join(SUFFIXES)}"
    if not folder.is_dir():
        return f"the folder {folder.resolve()} does not exist: check the pattern ({supported})"
    other = sorted(Path(p).name for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        return f"it matches {shown}, which are not dataset files: {supported}"
    return f"nothing in {folder.resolve()} matches it: check the pattern ({supported})"


def read_file(path: Path, rejects: list[Reject], sample_by: str = "line") -> Iterator[RawRecord]:
    """The records of one file; a .txt file gives {"text": ...} records split as ``sample_by`` says."""
    if path.suffix == ".txt":
        from ftwiz.core.data.text_files import read_text_file

        yield from read_text_file(path, sample_by)
    elif path.suffix == ".jsonl":
        yield from _read_jsonl(path, rejects)
    elif path.suffix == ".json":
        yield from _read_json(path, rejects)
    elif path.suffix in (".csv", ".tsv"):
        yield from _read_csv(path, rejects)
    else:
        yield from _read_parquet(path)


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# csv's default cell limit is 128 KiB: a long answer would stop the whole file; 1 GiB fits any real cell.
_CSV_FIELD_LIMIT = 1 << 30


def encoding_error(path: Path) -> FtwizError:
    """The file-level "not UTF-8" error, naming the byte offset and line of the first bad byte."""
    data = path.read_bytes()
    if data[:2] in _UTF16_BOMS:
        return FtwizError("the file is UTF-16, not UTF-8", where=Location(file=path, line=1),
                          fix="re-save the file as UTF-8 (in Excel: 'CSV UTF-8'; in Notepad: encoding UTF-8)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return FtwizError(f"not valid UTF-8 at byte {exc.start}", where=Location(file=path, line=line),
                          fix="re-save the file as UTF-8")
    return FtwizError("not valid UTF-8", where=Location(file=path), fix="re-save the file as UTF-8")


def _read_jsonl(path: Path, rejects: list[Reject]) -> Iterator[RawRecord]:
    """One record per line; a line that is not UTF-8 or not JSON becomes a reject for that line only.

    Lines split on "\n" only (a JSON string cannot hold a raw newline), so "\r\n" files and U+2028
    inside strings read as written; a UTF-8 BOM on the first line is skipped.
    """
    read = not_utf8 = 0
    with open(path, "rb") as fh:
        for number, raw_line in enumerate(fh, start=1):
            if number == 1:
                if raw_line[:2] in _UTF16_BOMS:
                    raise encoding_error(path)
                raw_line = raw_line.removeprefix(codecs.BOM_UTF8)
            if not raw_line.strip():
                continue
            index = number - 1
            if read == 0 and raw_line.lstrip().startswith(b"["):
                _refuse_json_array(path)
            read += 1
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                not_utf8 += 1
                rejects.append(Reject(str(path), number, index, "invalid_utf8",
                                      f"not valid UTF-8 (byte {exc.start})", raw=raw_line.decode("utf-8", "replace")))
                continue
            try:  # without the line end, an error at the end of the line says its real column
                data = json.loads(text.rstrip("\r\n"), object_pairs_hook=_no_duplicate_keys)
            except DuplicateKeyError as exc:
                rejects.append(Reject(str(path), number, index, "duplicate_key", str(exc), raw=text.strip()))
                continue
            except json.JSONDecodeError as exc:
                rejects.append(Reject(str(path), number, index, "invalid_json",
                                      f"invalid JSON: {exc.msg} at column {exc.colno}", raw=text.strip()))
                continue
            yield RawRecord(data, str(path), number, index)
    if not_utf8 and not_utf8 * 2 >= read:  # the file's encoding, not a stray byte: one error, not a reject a line
        raise encoding_error(path)


def _refuse_json_array(path: Path) -> None:
    """FtwizError when a .jsonl file is one JSON array (a .json file renamed, or saved by ``json.dump``)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return  # not one array after all: read it line by line, each bad line a reject
    if isinstance(data, list):
        raise FtwizError(f"the file is one JSON array of {len(data)} records, not JSON Lines (one record a line)",
                         where=Location(file=path, line=1),
                         fix=f"rename it to {path.with_suffix('.json').name}: ftwiz reads a JSON array from .json "
                             "files (or write one record per line)")


def _read_json(path: Path, rejects: list[Reject]) -> Iterator[RawRecord]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise encoding_error(path) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except DuplicateKeyError as exc:
        raise FtwizError(str(exc), where=Location(file=path), fix="remove the repeated key") from None
    except json.JSONDecodeError as exc:
        if "\n{" in text and text.lstrip().startswith("{"):
            raise FtwizError(f"invalid JSON at line {exc.lineno}: {exc.msg}", where=Location(file=path, line=exc.lineno),
                             fix="this looks like JSON Lines: rename the file to .jsonl") from None
        raise FtwizError(f"invalid JSON: {exc.msg}", where=Location(file=path, line=exc.lineno),
                         fix="fix the syntax on that line") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise FtwizError("a .json dataset must hold a list of records", where=Location(file=path),
                         fix="wrap the records in [ ... ]")
    for index, item in enumerate(data):  # line None: json_record_lines() finds it when a record is rejected
        yield RawRecord(item, str(path), None, index)


def json_record_lines(path: Path) -> list[int]:
    """The line each record of a .json file starts on (for naming rejects; costs a second parse)."""
    _, lines = _json_with_lines(path.read_bytes().decode("utf-8-sig"))
    return lines


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _json_with_lines(text: str) -> tuple[Any, list[int]]:
    """Parse a JSON document; for a top-level array also return the line each element starts on.

    Same result and errors as ``json.loads`` (duplicate keys refused), element by element with
    ``raw_decode``: about twice as slow, so it runs only when a record of a .json file is rejected.
    """
    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)
    pos = _JSON_SPACE.match(text).end()
    if not text.startswith("[", pos):
        value, end = decoder.raw_decode(text, pos)
        lines = [text.count("\n", 0, pos) + 1]
    else:
        value, lines, line, counted = [], [], 1, 0
        pos = _JSON_SPACE.match(text, pos + 1).end()
        end = pos + 1 if text.startswith("]", pos) else None
        while end is None:
            line, counted = line + text.count("\n", counted, pos), pos
            item, pos = decoder.raw_decode(text, pos)
            value.append(item)
            lines.append(line)
            pos = _JSON_SPACE.match(text, pos).end()
            if text.startswith(",", pos):
                pos = _JSON_SPACE.match(text, pos + 1).end()
            elif text.startswith("]", pos):
                end = pos + 1
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
    end = _JSON_SPACE.match(text, end).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value, lines


def _read_csv(path: Path, rejects: list[Reject]) -> Iterator[RawRecord]:
    """CSV/TSV through the csv module over the file object, so every byte of a cell is kept.

    ``newline=""`` lets csv see quoted line breaks ("1. red\n2. yellow") and ``\r\n`` itself; ``""``
    inside a quoted cell is a quote; a UTF-8 BOM is dropped. A record's line is the line it *starts* on.
    ``strict`` turns a broken quote into an error naming its line instead of silently merging cells
    (an unclosed quote would otherwise swallow the rest of the file into one cell).
    """
    delimiter = "\t" if path.suffix == ".tsv" else ","
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    end = 0  # the last line of the last complete row: a broken record starts after it
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise FtwizError("the CSV file has no header row", where=Location(file=path, line=1),
                                 fix="add a header naming the columns")
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise FtwizError(f"column {repeated[0]!r} appears twice in the header", where=Location(file=path, line=1),
                                 fix="give every column its own name")
            end, index = reader.line_num, 0
            for row in reader:
                line, end = end + 1, reader.line_num
                if not row:  # a blank line
                    continue
                if len(row) > len(header):
                    rejects.append(Reject(str(path), line, index, "bad_csv_row",
                                          f"{len(row)} cells for {len(header)} columns", raw=row))
                else:  # missing trailing cells read as missing fields, as DictReader does
                    cells = row + [None] * (len(header) - len(row))
                    yield RawRecord(dict(zip(header, cells, strict=True)), str(path), line, index)
                index += 1
    except UnicodeDecodeError:
        raise encoding_error(path) from None
    except csv.Error as exc:
        raise FtwizError(f"cannot read the {'TSV' if delimiter == chr(9) else 'CSV'} file: {exc}",
                         where=Location(file=path, line=end + 1),
                         fix='quote cells that hold the delimiter, quotes or line breaks ("...") and double '
                             'the quotes inside them ("")') from None


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise FtwizError(f"cannot read Parquet file: {exc}", where=Location(file=path),
                         fix="check the file is a complete Parquet file") from None
    for index, row in enumerate(table.to_pylist()):
        yield RawRecord(row, str(path), None, index)
