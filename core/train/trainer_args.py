"""What the Trainer is built from for a run: its TrainingArguments, data collator and the dataset columns it sees.

Shared by the training runner and the planner's measuring child (planner/probe_child.py), so a measured step
runs with exactly the batch, precision and collation training will use.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.planner.plan import Plan
from ftwiz.core.recipe import Recipe
from ftwiz.core.rundir import RunDir
from ftwiz.core.train.tracking import trainer_report_to


def training_arguments(recipe: Recipe, plan: Plan, run: RunDir, has_validation: bool):
    from transformers import TrainingArguments

    return TrainingArguments(**training_kwargs(recipe, plan, run, has_validation))


def training_kwargs(recipe: Recipe, plan: Plan, run: RunDir, has_validation: bool) -> dict[str, Any]:
    """TrainingArguments' values for this run (TRL's stage configs extend TrainingArguments and take them too)."""
    eval_strategy = ("steps" if recipe.eval_steps else "epoch") if has_validation else "no"
    save_strategy = "steps" if recipe.save_steps else "epoch"
    on_cpu = plan.device == "cpu"
    return dict(
        output_dir=str(run.checkpoints),
        per_device_train_batch_size=plan.micro_batch,
        per_device_eval_batch_size=plan.micro_batch,
        gradient_accumulation_steps=plan.grad_accum,
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        warmup_steps=recipe.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type=recipe.lr_scheduler_type,
        weight_decay=recipe.weight_decay,
        max_grad_norm=recipe.max_grad_norm,
        optim=plan.optimizer,
        bf16=plan.dtype == "bf16" and not on_cpu,
        fp16=plan.dtype == "fp16" and not on_cpu,
        use_cpu=on_cpu,
        gradient_checkpointing=False,  # enabled on the model itself (peft needs input grads first)
        eval_strategy=eval_strategy,
        eval_steps=recipe.eval_steps,
        save_strategy=save_strategy,
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        logging_steps=recipe.logging_steps,
        logging_first_step=True,
        # log a NaN/inf loss as it is: the filter would log the running mean instead (0.0 once every step is
        # NaN), hiding a diverged run that ftwiz must stop (ftwiz.core.train.divergence)
        logging_nan_inf_filter=False,
        seed=recipe.seed,
        data_seed=recipe.seed,
        report_to=trainer_report_to(recipe.report_to),  # TensorBoard/MLflow: our callbacks (train/tracking.py)
        run_name=run.name,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        save_only_model=False,
    )


def data_collator(tokenizer, plan: Plan, packing: bool = False):
    if packing:  # padding-free rows, samples kept apart by their position_ids (see train/packing.py)
        from ftwiz.core.train.packing import PackedCollator

        return PackedCollator(tokenizer.pad_token_id)
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100,
                                  pad_to_multiple_of=8 if plan.device == "cuda" else None)


def model_columns(dataset):
    keep = [c for c in ("input_ids", "attention_mask", "labels", "position_ids") if c in dataset.column_names]
    return dataset.select_columns(keep)
