"""The record ``ftwiz export --verify`` leaves next to a GGUF, read back before the GGUF is used.

``export --verify`` writes ``<file>.gguf.verify.json`` (a :class:`~ftwiz.core.export.verify.VerifyReport`).
``register``, ``chat`` and ``serve`` read it so that a GGUF proven wrong (e.g. its tokenization differs
from the model's) is not silently deployed. A GGUF with no record, or a record older than the file (the
GGUF was written again without ``--verify``), counts as unverified and is used as before. A GGUF moved or copied
away from its record keeps its verdict: the record is also kept under the file's content identity
(:mod:`ftwiz.core.export.verify_identity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.errors import FtwizError
from ftwiz.core.export.verify_identity import keep_verdict, stored_record
from ftwiz.core.export.verify_report import Check, VerifyReport


def record_path(gguf: str | Path) -> Path:
    """``<gguf>.verify.json``: where ``export --verify`` writes its report."""
    gguf = Path(gguf)
    return gguf.with_name(gguf.name + ".verify.json")


def write_verify_record(gguf: str | Path, report: VerifyReport) -> Path:
    """Write ``report`` as ``<gguf>.verify.json`` (temp name, then renamed) after the GGUF, and keep it under the
    file's content identity so that it follows a moved or copied GGUF (:mod:`.verify_identity`); returns the
    path beside the GGUF."""
    text = report.to_json()
    written = write_text_atomic(record_path(gguf), text)
    keep_verdict(gguf, text)
    return written


def _record_of(gguf: Path) -> tuple[Path | None, bool]:
    """The record that judges this file and whether it is stale: the one kept for its content (never stale, as
    it judged these very bytes), else the one beside it (stale when older than the GGUF: the file was written
    again after the check), else None. Content first: a GGUF moved or copied onto another export's path (``mv``
    keeps its mtime) sits beside a record that judged other bytes."""
    kept = stored_record(gguf) if gguf.is_file() else None
    if kept is not None:
        return kept, False
    beside = record_path(gguf)
    if beside.is_file():
        return beside, gguf.is_file() and beside.stat().st_mtime < gguf.stat().st_mtime
    return None, False


def _first_problem(exc: Exception) -> str:
    """One line for a damaged record: pydantic's first error as ``field: message`` (its full text spans
    lines and links to its documentation), else the exception's own text."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "the record"
            more = len(errors()) - 1
            return f"{where}: {first.get('msg', 'invalid')}" + (f" (and {more} more)" if more else "")
        except (IndexError, TypeError, AttributeError):
            pass
    return str(exc)


def read_verify_record(gguf: str | Path) -> VerifyReport | None:
    """The verify report for this very file, or None when unverified (no record, or one older than the GGUF).

    FtwizError when the record exists but cannot be read (so a damaged record is not taken for a pass).
    """
    path, stale = _record_of(Path(gguf))
    if path is None or stale:  # stale: the GGUF was written again after this check, which judged an older file
        return None
    try:
        return VerifyReport.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FtwizError(f"cannot read the export verification record: {_first_problem(exc)}", where=str(path),
                         fix=f"re-export with verification (`ftwiz export ... --verify`) or delete {path.name}") from exc


@dataclass(frozen=True)
class VerifyStatus:
    """What ``ftwiz models list`` shows for a GGUF's ``export --verify`` record.

    ``state``: ``passed`` | ``failed`` | ``unverified`` (no record) | ``stale`` (a record older than the GGUF:
    it judged an earlier file, so the GGUF counts as unverified; ``was`` keeps its verdict) | ``unreadable``.
    """

    state: str
    record: str
    failed: tuple[str, ...] = ()  # names of the failed checks (failed, or stale with was="failed")
    was: str | None = None  # a stale record's verdict: "passed" | "failed"

    @property
    def label(self) -> str:
        """``passed``, ``FAILED (tokenization)``, ``not verified``, ``stale (was passed)``, ``record unreadable``."""
        if self.state == "passed":
            return "passed"
        if self.state == "failed":
            return f"FAILED ({', '.join(self.failed)})" if self.failed else "FAILED"
        if self.state == "stale":  # the GGUF was written again after the check
            return f"stale (was {'FAILED' if self.was == 'failed' else 'passed'})" if self.was else "stale"
        return "record unreadable" if self.state == "unreadable" else "not verified"

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "record": self.record, "failed_checks": list(self.failed), "was": self.was}


def verify_status(gguf: str | Path) -> VerifyStatus:
    """The ``export --verify`` verdict on this GGUF, for listings: never raises (a damaged record is
    ``unreadable``, which ``register``/``chat``/``serve`` refuse with :func:`read_verify_record`'s error)."""
    path, stale = _record_of(Path(gguf))  # as read_verify_record finds and judges it
    if path is None:
        return VerifyStatus("unverified", str(record_path(gguf)))
    try:
        report = VerifyReport.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return VerifyStatus("stale" if stale else "unreadable", str(path))
    failed = tuple(c.name for c in report.checks if c.passed is False)
    verdict = "failed" if failed else "passed"
    return VerifyStatus("stale", str(path), failed, was=verdict) if stale else VerifyStatus(verdict, str(path), failed)


def failed_checks(gguf: str | Path) -> list[Check]:
    """The checks ``export --verify`` recorded as failed for this GGUF (empty: passed or never verified)."""
    report = read_verify_record(gguf)
    return [] if report is None else [c for c in report.checks if c.passed is False]


def describe(checks: list[Check]) -> str:
    """``tokenization (ids differ at 3), eos`` for messages and Modelfile notes (each detail cut at 160
    characters and kept on one line: the full text stays in the record)."""
    def short(detail: str) -> str:
        detail = " ".join(detail.split())
        return detail if len(detail) <= 160 else detail[:159] + "…"

    return ", ".join(f"{c.name} ({short(c.detail)})" if c.detail else c.name for c in checks)


class VerifyFailedRefusal(FtwizError):
    """The refusal of a GGUF whose ``export --verify`` failed: the CLI's ``--force`` and the wizard's "... anyway"
    (it asks, seeing this type) use the GGUF anyway."""


def require_verified(gguf: str | Path, *, force: bool = False, command: str = "register") -> list[Check]:
    """Refuse a GGUF whose ``export --verify`` failed, unless ``force``; returns the failed checks (when forced).

    :class:`VerifyFailedRefusal` naming the failed checks, the record and the two fixes (re-export, or ``--force``);
    a record that cannot be read is refused the same way (its verdict is unknown), and ``force`` uses the GGUF
    anyway, as the wizard's "... anyway" and ``--force`` promise.
    """
    try:
        failed = failed_checks(gguf)
    except FtwizError as damaged:
        if force:
            return []
        raise VerifyFailedRefusal(damaged.what, where=damaged.where,
                                  fix=f"{damaged.fix}, or pass --force to `ftwiz {command}` to use this GGUF anyway"
                                  ) from None
    if failed and not force:
        raise VerifyFailedRefusal(
            f"{Path(gguf).name} failed `ftwiz export --verify`: {describe(failed)}, so it does not behave "
            f"like the model it was exported from", where=str(_record_of(Path(gguf))[0] or record_path(gguf)),
            fix="export again (`ftwiz export RUN --verify`) once the cause is fixed, or pass --force to "
                f"`ftwiz {command}` to use this GGUF anyway")
    return failed
