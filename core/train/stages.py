"""Training stages beyond SFT, on TRL's trainers: DPO and KTO (``trl``), ORPO (``trl.experimental.orpo``).

The runner prepares everything as for SFT -- model (QLoRA/LoRA/full, from ``model_setup``), plan, run
directory, events, checkpoints, resume, cancel, out-of-memory back-off -- and asks this module for the
Trainer. Losses are TRL's; ftwiz maps LLaMA-Factory's recipe knobs onto TRL's config:

============================  ===============================================================
recipe (LLaMA-Factory)        TRL
============================  ===============================================================
``pref_beta``                 ``DPOConfig.beta`` / ``ORPOConfig.beta`` / ``KTOConfig.beta``
``pref_loss``                 ``DPOConfig.loss_type`` (sigmoid = the DPO paper's loss)
``pref_ftx``                  ``DPOConfig.loss_type += ["sft"]`` with ``loss_weights = [1, pref_ftx]``
``kto_chosen_weight``         ``KTOConfig.desirable_weight``
``kto_rejected_weight``       ``KTOConfig.undesirable_weight``
``cutoff_len``                ``max_length`` (prompt + answer)
============================  ===============================================================

Reference model: with LoRA/QLoRA it is the base with the adapter disabled -- no second copy of the weights.
(TRL copies an adapter it was given into a frozen "ref" adapter; ftwiz removes that copy so the reference
is always the base, as in LLaMA-Factory, also when training continues from an SFT adapter.) With full
fine-tuning TRL loads a second, frozen copy of the base model. ORPO needs no reference.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.errors import FtwizError

PREFERENCE_STAGES = ("dpo", "orpo", "kto")


def is_preference(stage: str) -> bool:
    return stage in PREFERENCE_STAGES


def check_stage_data(stage: str, records: list[dict[str, Any]]) -> None:
    """Refuse, before anything is loaded, data that does not fit the stage (the pipeline's split records)."""
    if stage == "pt":
        chat = next((i for i, r in enumerate(records) if r["messages"][0]["role"] != "text"), None)
        if chat is not None:
            raise FtwizError(f"stage pt (continued pre-training) learns raw text, but training record {chat} is a "
                             "conversation", where="recipe: stage",
                             fix="use records with a 'text' field (or formatting: text), or set stage: sft")
    elif is_preference(stage):
        from ftwiz.core.data.preference import preference_rows

        preference_rows(records, stage)  # raises on the first record without chosen/rejected


def stage_config(recipe, base: dict[str, Any], max_length: int):
    """The TRL config for ``recipe.stage``: ftwiz's TrainingArguments ``base`` plus the stage's knobs."""
    common = dict(base, max_length=max_length, disable_dropout=True, dataset_num_proc=None)
    if recipe.stage == "dpo":
        from trl import DPOConfig

        losses, weights = [recipe.pref_loss], None
        if recipe.pref_ftx > 0:
            losses, weights = [recipe.pref_loss, "sft"], [1.0, recipe.pref_ftx]
        return DPOConfig(**common, beta=recipe.pref_beta, loss_type=losses, loss_weights=weights,
                         precompute_ref_log_probs=False, padding_free=False)
    if recipe.stage == "kto":
        from trl import KTOConfig

        return KTOConfig(**common, beta=recipe.pref_beta, desirable_weight=recipe.kto_chosen_weight,
                         undesirable_weight=recipe.kto_rejected_weight, precompute_ref_log_probs=False)
    if recipe.stage == "orpo":
        from trl.experimental.orpo import ORPOConfig

        # ORPO's batches have no `input_ids` (chosen_/rejected_input_ids): the Trainer cannot count tokens
        return ORPOConfig(**(common | {"include_num_input_tokens_seen": "no"}), beta=recipe.pref_beta)
    raise ValueError(f"not a preference stage: {recipe.stage!r}")


def _trainer_class(stage: str):
    if stage == "dpo":
        from trl import DPOTrainer

        return DPOTrainer
    if stage == "kto":
        from trl import KTOTrainer

        return KTOTrainer
    from trl.experimental.orpo import ORPOTrainer

    return ORPOTrainer


def preference_trainer(recipe, model, tokenizer, args, train_ds, eval_ds):
    """TRL's trainer for ``recipe.stage`` over ``model`` (a PeftModel, or the full model).

    ``train_ds``/``eval_ds`` are conversational rows from ``ftwiz.core.data.preference``; the tokenizer's
    ``chat_template`` must already be the run's template (TRL renders with it).
    """
    import logging

    if recipe.stage == "kto" and args.per_device_train_batch_size * args.gradient_accumulation_steps < 2:
        raise FtwizError("stage kto compares each answer with the others in its batch, so it needs at least 2 "
                         "answers per optimizer step", where="recipe: per_device_train_batch_size",
                         fix="set per_device_train_batch_size: 2 or more (or gradient_accumulation_steps)")
    cls = _trainer_class(recipe.stage)
    kwargs: dict[str, Any] = dict(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                  processing_class=tokenizer)
    if recipe.stage in ("dpo", "kto"):
        kwargs["ref_model"] = None
    # TRL warns about every long prompt while tokenizing; ftwiz already reported lengths in its data stats.
    logging.getLogger("trl").setLevel(logging.ERROR)
    trainer = cls(**kwargs)
    drop_reference_adapter(trainer.model)
    return trainer


def drop_reference_adapter(model) -> None:
    """Remove the "ref" adapter TRL copies from a given adapter: the reference becomes the adapter-disabled
    base (TRL computes reference log-probs with adapters disabled when no "ref" adapter exists)."""
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, dict) and "ref" in peft_config:
        model.delete_adapter("ref")
        model.set_adapter("default")
