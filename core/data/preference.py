"""Preference data for the alignment stages, in the conversational shapes TRL's trainers render themselves.

The data pipeline (``prepare_for_training``) reads, cleans, deduplicates and splits the records as for SFT;
its ``splits`` keep each record as ``{"messages": [...], "chosen": str, "rejected": str}`` whatever shape
it came in (``prompt/chosen/rejected``, Alpaca, ShareGPT, OpenAI messages, LLaMA-Factory ``ranking``).
From those:
- ``dpo`` / ``orpo``: ``{"prompt": messages, "chosen": [assistant], "rejected": [assistant]}``;
- ``kto``: one ``{"prompt": messages, "completion": [assistant], "label": bool}`` per answer: the chosen
  answer desirable, the rejected one undesirable (TRL's ``unpair_preference_dataset`` does the same); or,
  for records whose last answer carries ``label`` (TRL) / ``kto_tag`` (LLaMA-Factory), that answer with
  its label.
TRL then renders prompt and prompt+answer through the tokenizer's chat template (the run's template is
set on the tokenizer first), so what is learned is exactly what the template produces. With a thinking
template and ``enable_thinking: false`` the ``<think>`` reasoning is removed from every answer first, by
the rule supervised fine-tuning applies (``core/data/reasoning.py``): the model is served after an empty
think block, so the chosen answer must follow it, not a thought.
"""

from __future__ import annotations

import json
from typing import Any

from ftwiz.core.data.reasoning import preference_answers
from ftwiz.core.errors import FtwizError

PAIRWISE = ("dpo", "orpo")
TOOL_STAGES = ("dpo", "kto")  # trainers that read a row's ``tools`` (ORPO's renders none)


def _answer(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def preference_rows(records: list[dict[str, Any]], stage: str, *, template: str | None = None,
                    template_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """TRL rows for ``stage`` from the pipeline's split records (see the module docstring); ``template``
    and ``template_kwargs`` (the run's template of record and ``enable_thinking``) decide whether
    ``<think>`` reasoning is removed from the answers, as for SFT.

    Raises:
        FtwizError: when a record has no chosen/rejected answers (the data is not preference data), naming
        the ``stage`` key and the record.
    """
    rows: list[dict[str, Any]] = []
    with_tools = any(r.get("tools") for r in records)
    for index, record in enumerate(records):
        record, _removed = preference_answers(record, template, template_kwargs)
        if record.get("tools") and stage not in TOOL_STAGES:
            raise FtwizError(f"stage {stage}: training record {index} offers tools, but TRL's {stage} trainer renders "
                             "prompts without tool definitions, so the model would learn after a prompt it is never "
                             "served", where="recipe: stage",
                             fix="use stage: dpo or kto for data with tools, or leave those records out")
        # TRL's DPO/KTO trainers render each row with its own tools (a JSON string: one Arrow type for any schema)
        tools = {"tools": json.dumps(record["tools"]) if record.get("tools") else None} if with_tools else {}
        chosen, rejected = record.get("chosen"), record.get("rejected")
        if stage == "kto" and chosen is None and record.get("label") is not None:
            rows.append({**_labelled(record, index), **tools})
            continue
        if chosen is None or rejected is None:
            raise FtwizError(
                f"stage {stage} trains on preference pairs, but record {index} of the training data has no "
                "chosen/rejected answers", where="recipe: stage",
                fix="use data with prompt/chosen/rejected (or LLaMA-Factory `ranking: true`), e.g. the "
                    "preferences.jsonl that `ftwiz eval RUN --review` writes; or set stage: sft")
        prompt = list(record["messages"])
        if stage in PAIRWISE:
            rows.append({"prompt": prompt, "chosen": _answer(chosen), "rejected": _answer(rejected), **tools})
        elif stage == "kto":
            rows.append({"prompt": prompt, "completion": _answer(chosen), "label": True, **tools})
            rows.append({"prompt": prompt, "completion": _answer(rejected), "label": False, **tools})
        else:
            raise ValueError(f"not a preference stage: {stage!r}")
    return rows


def _labelled(record: dict[str, Any], index: int) -> dict[str, Any]:
    """KTO row from a record whose last assistant answer carries ``label`` (true = desirable)."""
    messages = list(record["messages"])
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise FtwizError(f"stage kto: training record {index} is labelled but does not end with an assistant "
                         "answer to judge", where="recipe: stage",
                         fix="end each labelled conversation with the assistant answer the label is about")
    answer = {k: v for k, v in messages[-1].items() if k in ("role", "content", "tool_calls")}
    return {"prompt": messages[:-1], "completion": [answer], "label": bool(record["label"])}


def preference_dataset(records: list[dict[str, Any]], stage: str, *, template: str | None = None,
                       template_kwargs: dict[str, Any] | None = None):
    """:func:`preference_rows` as a ``datasets.Dataset`` (None when there are no records)."""
    if not records:
        return None
    from datasets import Dataset

    return Dataset.from_list(preference_rows(records, stage, template=template, template_kwargs=template_kwargs))
