"""What a run was started from, so a resume can refuse when the recipe, the data or the base model changed.

Resuming a checkpoint against different data or weights silently trains a hybrid no one asked for; the
fingerprint makes that an error with the reason. Hashing a multi-GB model in full would make every
resume slow, so the base model is identified by its config, each weight file's safetensors header
(names, shapes, dtypes, offsets) and size, and a 1 MiB sample from the middle of each file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import Recipe

# Fields that change what is logged, saved or exported, but not what is learned.
NOT_TRAINING_FIELDS = {"run_name", "export_quant", "ollama_name", "save_total_limit", "logging_steps",
                       "save_steps", "eval_steps", "report_to"}
SAMPLE_BYTES = 1 << 20


def recipe_fingerprint(recipe: Recipe) -> str:
    """16 hex digits over the training fields that differ from their defaults.

    Fields at their default are left out so that a field added to the recipe later (with a default that
    keeps the old behaviour) does not change the fingerprint of runs started before it existed: their
    stored recipe.yaml, loaded today, hashes the same as the same recipe written today.
    """
    values = recipe.model_dump(mode="json", exclude_defaults=True)
    data = {k: v for k, v in values.items() if k not in NOT_TRAINING_FIELDS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def model_fingerprint(model_dir: Path) -> str:
    digest = hashlib.sha256()
    config = model_dir / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")):
        size = weights.stat().st_size
        digest.update(f"{weights.name}:{size}".encode())
        with open(weights, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            digest.update(fh.read(min(header_len, 64 << 20)))
            fh.seek(max(0, size // 2 - SAMPLE_BYTES // 2))
            digest.update(fh.read(SAMPLE_BYTES))
    return digest.hexdigest()[:16]


def fingerprint(recipe: Recipe, model_dir: Path, dataset_hash: str, template_hash: str) -> dict[str, str]:
    return {"recipe": recipe_fingerprint(recipe), "dataset": dataset_hash, "template": template_hash,
            "base_model": model_fingerprint(model_dir)}


WHAT_CHANGED = {
    "recipe": "the recipe's training settings changed",
    "dataset": "the dataset changed (files or cleaning/split options)",
    "template": "the chat template changed",
    "base_model": "the base model's config or weights changed",
}


def check_resumable(stored: dict[str, str], current: dict[str, str], run_name: str) -> None:
    """Refuse to resume when anything that shapes training differs from the run's start."""
    changed = [key for key in WHAT_CHANGED if stored.get(key) and stored.get(key) != current.get(key)]
    if changed:
        reasons = "; ".join(f"{WHAT_CHANGED[key]} ({stored[key]} -> {current[key]})" for key in changed)
        raise FtwizError(
            f"cannot resume run '{run_name}': {reasons}. Continuing would train a mix of two setups.",
            fix="restore what changed, or start a new run with another run_name (e.g. --run-name "
                f"{run_name}-2)")
