"""What a run trains on, as the oracle renders it: shared by the tests that train a run's recipe again."""

from __future__ import annotations

import json
from pathlib import Path


def rendered_records(tok, run: Path) -> list[str]:
    """The run's prepared training records (``run/data/train.jsonl``), each rendered by ``tok``'s own chat template
    (transformers' ``apply_chat_template``), sorted."""
    records = [json.loads(line) for line in (run / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    return sorted(tok.apply_chat_template(r["messages"], tokenize=False) for r in records)
