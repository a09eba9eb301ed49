"""Raw records with their origin, and rejects with their reason: nothing is dropped without a trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawRecord:
    """One record as read from a file, with where it came from (for error messages and rejects)."""

    data: Any
    file: str
    line: int | None = None  # 1-based line for JSONL/CSV, None for JSON arrays and Parquet
    index: int = 0  # 0-based record index within its file

    def where(self) -> str:
        place = f"line {self.line}" if self.line is not None else f"record {self.index}"
        return f"{self.file}, {place}"


@dataclass
class Reject:
    file: str
    line: int | None
    index: int
    reason: str  # a short stable class, e.g. "empty_assistant_turn"
    message: str  # what a person reads
    field: str | None = None
    raw: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "record": self.index, "field": self.field,
                "reason": self.reason, "message": self.message, "raw": self.raw}


class RecordProblem(Exception):
    """Raised by format readers for one bad record; turned into a :class:`Reject` by the caller."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


@dataclass
class Conversation:
    """The normalised form every format becomes: OpenAI-style messages (+ DPO pair, + tools when present).

    ``messages``: dicts with ``role`` (system/user/assistant/tool, or ``text`` for pre-training) and
    ``content`` (always a str; "" only on an assistant turn that carries ``tool_calls``). They may also carry
    ``tool_calls`` (assistant: ``[{"type": "function", "function": {"name": str, "arguments": dict}}]``, plus
    ``"id"`` when the data has one), ``tool_call_id`` and ``name`` (tool results).
    ``tools``: the record's tool definitions as OpenAI tool dicts (what ``apply_chat_template(tools=...)``
    takes), or None.
    """

    messages: list[dict[str, Any]]
    chosen: str | None = None
    rejected: str | None = None
    source: RawRecord | None = field(default=None, repr=False)
    tools: list[dict[str, Any]] | None = None
    label: bool | None = None  # KTO: whether the last assistant answer is desirable (``label``/``kto_tag``)
    # where each message is in the record as the file holds it: (the message, its text), e.g.
    # ("conversations[2]", "conversations[2].value"); None for records not read from a file
    fields: list[tuple[str, str] | None] | None = field(default=None, repr=False, compare=False)

    def field_of(self, i: int, part: str | None = None) -> str:
        """The user's name for message ``i`` (``part`` None), its text (``"content"``) or another key of it
        (``"weight"``): ``conversations[2].value`` for a ShareGPT turn, ``output`` for an Alpaca answer."""
        at = self.fields[i] if self.fields and i < len(self.fields) else None
        if at is None:
            return f"messages[{i}]" + (f".{part}" if part else "")
        message, text = at
        if part == "content":
            return text
        return message + (f".{part}" if part else "")

    def to_json(self) -> dict[str, Any]:
        """``{"messages": [...]}`` plus ``chosen``/``rejected`` and ``tools`` only when present."""
        data: dict[str, Any] = {"messages": self.messages}
        if self.chosen is not None:
            data["chosen"] = self.chosen
            data["rejected"] = self.rejected
        if self.tools:
            data["tools"] = self.tools
        if self.label is not None:
            data["label"] = self.label
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: RawRecord | None = None) -> Conversation:
        """The inverse of :meth:`to_json` (prepared splits, rejects and tokenizer rows read back)."""
        return cls(list(data["messages"]), chosen=data.get("chosen"), rejected=data.get("rejected"),
                   source=source, tools=data.get("tools") or None, label=data.get("label"))
