"""The data pipeline: formats, validation with locations, cleaning, dedup, split, templates, loss masks.

Entry points: :func:`prepare_for_training` (training), :func:`check_dataset` (CLI and wizard).
"""

from ftwiz.core.data.pipeline import (
    CheckReport,
    PreparedData,
    check_dataset,
    prepare_for_training,
    write_rejects,
)

__all__ = ["CheckReport", "PreparedData", "check_dataset", "prepare_for_training", "write_rejects"]
