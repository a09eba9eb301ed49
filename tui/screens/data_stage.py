"""The data step's stage offer: preference-shaped data trains with dpo, orpo or kto instead of sft.

Pairs (a prompt with a chosen and a rejected answer) can train any of the three, DPO being the usual
choice after SFT; single answers labelled desirable/undesirable (``label``/``kto_tag``) only KTO. The
preview of a pair shows both answers with the tokens each is scored on.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

PREFERENCE_STAGES = ("dpo", "orpo", "kto")
STAGE_CHOICES = {
    "dpo": "dpo: Direct Preference Optimization (chosen over rejected, against the base as reference)",
    "orpo": "orpo: odds-ratio preference + SFT on the chosen answers, no reference model",
    "kto": "kto: desirable / undesirable answers, pairs split in two",
}


def preference_shape(reports: list[tuple[str, Any]]) -> str | None:
    """``pairs`` when the checked records carry chosen/rejected answers, ``labelled`` when their last
    answers carry a KTO label, else None (conversations for sft, raw text for pt)."""
    samples = [s for _name, report in reports for s in report.samples]
    if any(s.get("chosen") is not None and s.get("rejected") is not None for s in samples):
        return "pairs"
    if any(s.get("label") is not None for s in samples):
        return "labelled"
    return None


def stage_options(shape: str | None) -> list[str]:
    """The stages this data can train, the default first."""
    return {"pairs": ["dpo", "orpo", "kto"], "labelled": ["kto"]}.get(shape or "", [])


def chosen_stage(current: str, shape: str | None) -> str:
    """The stage to train: the recipe's when the data allows it, else the data's default (sft for
    conversations, so a preference stage picked for earlier data does not stick to new data)."""
    options = stage_options(shape)
    if not options:
        return "sft" if current in PREFERENCE_STAGES else current
    return current if current in options else options[0]


def pair_preview(tokenizer: Any, template: str, record: dict[str, Any], recipe: Any) -> list[Any]:
    """Chosen and rejected answer of one pair, rendered and masked as the preference trainers score them."""
    from ftwiz.core.data.pair_view import pair_view
    from ftwiz.core.data.preview import learned_segments, tokenizer_label

    view = pair_view(tokenizer, template, record, recipe, record_label="the first pair")
    stage = getattr(recipe, "stage", "dpo")
    aims = (("desirable", "undesirable") if stage == "kto" else
            ("made more likely", "made less likely, relative to the base"))
    parts: list[Any] = [Text(f"What {stage} learns from the first pair (scored answer tokens green, prompt dimmed; "
                             f"tokenizer {tokenizer_label(tokenizer)}):", style="bold")]
    for name, sample, aim in (("chosen", view.chosen, aims[0]), ("rejected", view.rejected, aims[1])):
        parts.append(Text(f"{name} ({sample.learned} of {len(sample.labels)} tokens, {aim}):", style="bold"))
        parts.append(learned_text(learned_segments(tokenizer, sample)))
    return parts


def learned_text(segments: list[tuple[str, bool]]) -> Text:
    """Core's ``(text, learned)`` segments as one Text: learned pieces bold green, context dimmed."""
    text = Text()
    for piece, learned in segments:
        text.append(piece, style="bold green" if learned else "dim")
    return text
