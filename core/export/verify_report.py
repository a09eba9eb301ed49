"""What ``ftwiz export --verify`` found about one GGUF: the checks and the record written beside the file.

Kept apart from :mod:`ftwiz.core.export.verify` (which runs the checks) so that readers of a record (``models
list``, the register/chat/serve gate) need neither llama.cpp nor transformers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, field


# Plain dataclasses, not pydantic models: ``ftwiz export`` imports this module, and pydantic's import and
# model building cost a noticeable share of a fast export's whole run. pydantic is imported only to read a
# record back (``VerifyReport.from_json``), where it validates these dataclasses as it did the models.
@dataclass
class Check:
    """One verification check; ``passed`` None means measured and reported but not judged."""

    name: str
    passed: bool | None
    detail: str = ""
    value: float | None = None


@dataclass
class VerifyReport:
    """What ``export --verify`` proved about one GGUF; written beside it as ``<file>.gguf.verify.json``."""

    gguf_path: str
    hf_model_dir: str
    quant: str
    checks: list[Check] = field(default_factory=list)

    def to_json(self) -> str:
        """The record's JSON text, laid out as the pydantic model wrote it (2-space indent, UTF-8 text; a
        NaN or infinite ``value`` becomes null, as pydantic serialised it)."""
        data = dataclasses.asdict(self)
        for check in data["checks"]:
            value = check["value"]
            if value is not None and not math.isfinite(value):
                check["value"] = None
        return json.dumps(data, indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> VerifyReport:
        """A report from a record's JSON text (this layout or the pydantic model's, which is the same).

        ValueError (pydantic's ValidationError) when the text is not JSON or a field is missing or of the
        wrong type, so a damaged record is never taken for a pass.
        """
        return _record_reader().validate_json(text)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    @property
    def tokenization(self) -> Check:
        return self.check("tokenization")

    @property
    def logits(self) -> Check:
        return self.check("logits")

    @property
    def chat_template(self) -> Check:
        return self.check("chat_template")

    @property
    def eos(self) -> Check:
        return self.check("eos")


@functools.cache
def _record_reader():
    """pydantic's validator of a :class:`VerifyReport` (built once: ``models list`` reads many records)."""
    from pydantic import TypeAdapter  # lazily: only readers of a record pay for pydantic

    return TypeAdapter(VerifyReport)
