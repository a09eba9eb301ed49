"""The rules for a recipe's numbers that need more than a range: how long to train and what to hold out.

One rule per value, used by the recipe schema (``core/recipe.py``) and by the flags that set the same value
(``ftwiz train --max-steps``, ``ftwiz demo --max-steps``), so a value refused in one place is refused in all.
"""

from __future__ import annotations

import math

MAX_STEPS = 10_000_000  # ~4 months at a step a second: more is a typo (an extra 0 or two), not a plan
MAX_EPOCHS = 1000  # LLaMA-Factory's examples train 3; identity data a few dozen at most
DEFAULT_HELD_OUT = 0.1  # val_size and test_size when a recipe leaves them out


def max_steps_problem(value: int) -> str | None:
    """Why ``value`` is no ``max_steps`` (the recipe key and ``--max-steps`` alike), or None when it is one.
    transformers reads any value below 1 as "use num_train_epochs": only -1 means that here, the default."""
    if value == -1 or 1 <= value <= MAX_STEPS:
        return None
    if value < 1:
        return (f"{value} is not a number of steps: give 1 to {MAX_STEPS:,} steps, or -1 to train for "
                "num_train_epochs (transformers would read it as -1, silently)")
    return f"{value:,} steps is more than {MAX_STEPS:,} (months of training): give 1 to {MAX_STEPS:,}"


def epochs_problem(value: float) -> str | None:
    """Why ``value`` is no ``num_train_epochs``, or None when it is one (more than 0, at most MAX_EPOCHS)."""
    if not math.isfinite(value) or value <= 0:
        return f"{value} is not a number of passes over the data: give more than 0, e.g. 3"
    if value > MAX_EPOCHS:
        return (f"{value:g} epochs is more than {MAX_EPOCHS}: each record would be learned {value:g} times, which "
                f"memorises the data and runs for ages; give at most {MAX_EPOCHS} (a fixed length: max_steps)")
    return None


def val_size_problem(value: float) -> str | None:
    """Why ``value`` is no ``val_size``, or None. Below 1 it is a share of the records; 1 or more a number of
    records, as LLaMA-Factory reads ``val_size`` (its recipes hold out e.g. ``val_size: 100``)."""
    if not math.isfinite(value) or value < 0:
        return f"{value} is no validation size: give a share of the records below 1 (0.1), or a number of records"
    if value >= 1 and value != int(value):
        return (f"{value:g} is neither a share of the records (below 1, e.g. 0.1) nor a whole number of records "
                f"(e.g. {int(value)})")
    return None


def held_out_sum_problem(val_size: float, test_size: float, test_size_given: bool) -> str | None:
    """Why the two shares leave nothing to train on (their sum reaches 1), or None; a count is checked against
    the records when they are read (:func:`held_out_counts`)."""
    if val_size >= 1 or val_size + test_size < 1.0:
        return None
    default = "" if test_size_given else " (the default)"
    return (f"val_size {val_size:g} + test_size {test_size:g}{default} = {val_size + test_size:g} leaves nothing "
            "to train on: keep the two shares' sum below 1 (e.g. test_size: 0 for no test split)")


def held_out_counts(n: int, val_size: float, test_size: float) -> tuple[int, int]:
    """(validation, test) records to hold out of ``n``. A share holds out nothing below 10 (validation) or 20
    (test) records, where one record would be a noisy eval and a lost training example; a number of records is
    held out as given (the caller checks that some are left to train on)."""
    n_test = int(round(n * test_size)) if n >= 20 else 0
    n_val = int(val_size) if val_size >= 1 else (int(round(n * val_size)) if n >= 10 else 0)
    return n_val, n_test
