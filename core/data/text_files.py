"""Plain .txt datasets, read as the `datasets` "text" builder reads them (LLaMA-Factory maps .txt to it).

``sample_by``: "line" (default) makes one record a line, "paragraph" one a blank-line-separated block
("\n\n"), "document" one the whole file. Line breaks are normalised as Python's text mode does
("\r\n" and "\r" become "\n") and the line's own break is dropped (the builder's keep_linebreaks=False).
Unlike the builder, records that are empty or only whitespace are skipped rather than kept as empty texts:
they hold nothing to learn, and as records they would only be rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ftwiz.core.data.records import RawRecord
from ftwiz.core.errors import FtwizError, Location

SAMPLE_BY = ("line", "paragraph", "document")


def read_text_file(path: Path, sample_by: str = "line") -> Iterator[RawRecord]:
    """{"text": ...} records with the 1-based line each starts on. Raises FtwizError for a file that is
    not UTF-8 (naming the line of the first bad byte) or an unknown ``sample_by``."""
    from ftwiz.core.data.loaders import encoding_error

    if sample_by not in SAMPLE_BY:
        raise FtwizError(f"sample_by {sample_by!r} is not one of {', '.join(SAMPLE_BY)}", where=Location(field="sample_by"),
                         fix="sample_by: line (one record a line), paragraph (blank-line separated) or document")
    try:
        with open(path, encoding="utf-8-sig") as fh:  # text mode: universal newlines, as the builder reads
            text = fh.read()
    except UnicodeDecodeError:
        raise encoding_error(path) from None
    if sample_by == "document":
        pieces = [(1, text)]
    else:
        separator = "\n" if sample_by == "line" else "\n\n"
        pieces, line = [], 1
        for piece in text.split(separator):
            pieces.append((line, piece))
            line += piece.count("\n") + separator.count("\n")
    index = 0
    for line, piece in pieces:
        if not piece.strip():
            continue
        yield RawRecord({"text": piece}, str(path), line, index)
        index += 1
