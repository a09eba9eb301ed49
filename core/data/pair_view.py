"""Preference pairs as TRL's DPO/ORPO/KTO trainers tokenize them: one prompt, a chosen and a rejected answer.

TRL renders the prompt with ``add_generation_prompt=True`` and prompt+answer without it, through the
tokenizer's chat template, and learns (and scores) the answer tokens: those after the longest prefix the
prompt shares with both prompt+chosen and prompt+rejected. The same ids serve ``data preview`` (what is
learned in each answer) and ``eval`` (each answer's log-probability under the policy and the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftwiz.core.data.preview import SampleView


@dataclass
class PairIds:
    """Token ids of one pair: ``chosen``/``rejected`` are prompt+answer; the first ``prompt_len`` are shared."""

    prompt_len: int
    chosen: list[int]
    rejected: list[int]
    chosen_text: str
    rejected_text: str

    def labels(self, which: str) -> list[int]:
        """-100 over the prompt, the token id over the answer (what the trainer learns and scores)."""
        ids = self.chosen if which == "chosen" else self.rejected
        return [-100] * self.prompt_len + ids[self.prompt_len:]


@dataclass
class PairView:
    """The preview of one preference record: each answer rendered and masked as training masks it."""

    chosen: SampleView
    rejected: SampleView
    record: str

    def to_json(self, tokenizer) -> dict[str, Any]:
        """``data preview --json`` for a pair: both answers as a sample's tokens and labels."""
        return {"record": self.record, "chosen": self.chosen.to_json(tokenizer),
                "rejected": self.rejected.to_json(tokenizer)}


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids ``a`` and ``b`` share (where a prompt ends and two answers part)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def pair_messages(record: dict[str, Any], system: str | None = None) -> tuple[list[dict], str, str]:
    """(prompt messages, chosen text, rejected text) of a split record, whitespace normalised as training
    does and ``system`` put first when the record has none. KeyError-free: the caller checks ``chosen``."""
    from ftwiz.core.data.clean import normalise_whitespace
    from ftwiz.core.data.records import Conversation

    conv = normalise_whitespace(Conversation.from_json({**record, "messages": [dict(m) for m in record["messages"]]}))
    if system and conv.messages and conv.messages[0]["role"] != "system":
        conv.messages.insert(0, {"role": "system", "content": system})
    return conv.messages, conv.chosen or "", conv.rejected or ""


def pair_ids(tokenizer, template: str, prompt: list[dict], chosen: str, rejected: str) -> PairIds:
    """Tokenize one pair as TRL's DPOTrainer does (``apply_chat_template`` renders, no added specials).

    Raises TemplateRefused when the template cannot render it.
    """
    from ftwiz.core.data.render import render

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompt_ids = ids(render(tokenizer, template, prompt, generation_prompt=True))
    chosen_text = render(tokenizer, template, prompt + [{"role": "assistant", "content": chosen}])
    rejected_text = render(tokenizer, template, prompt + [{"role": "assistant", "content": rejected}])
    chosen_ids, rejected_ids = ids(chosen_text), ids(rejected_text)
    prompt_len = min(common_prefix_length(prompt_ids, chosen_ids), common_prefix_length(prompt_ids, rejected_ids))
    return PairIds(prompt_len, chosen_ids, rejected_ids, chosen_text, rejected_text)


def is_pair(record: dict[str, Any]) -> bool:
    return record.get("chosen") is not None and record.get("rejected") is not None


def pair_view(tokenizer, template: str, record: dict[str, Any], recipe, *, record_label: str) -> PairView:
    """Both answers of a pipeline record (``{"messages", "chosen", "rejected"}``) as training sees them."""
    prompt, chosen, rejected = pair_messages(record, getattr(recipe, "system", None))
    pair = pair_ids(tokenizer, template, prompt, chosen, rejected)
    return PairView(SampleView(pair.chosen_text, pair.chosen, pair.labels("chosen"), record_label),
                    SampleView(pair.rejected_text, pair.rejected, pair.labels("rejected"), record_label),
                    record_label)
