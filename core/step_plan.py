"""The plan step: the one function ``ftwiz plan`` and the wizard's plan step call to plan a recipe.

Both gather their inputs (the CLI from flags, the wizard from its screens; the training split's token lengths
from :func:`ftwiz.core.recipe_inputs.training_lengths`, measured as ``ftwiz train`` measures them) and hand
them here; this checks the recipe's LoRA targets against the model, asks the planner, and adds the export
preflight's problems as warnings, so a job that could not become a GGUF is said before training.
"""

from __future__ import annotations

from ftwiz.core.errors import FtwizError
from ftwiz.core.planner import Plan, load_model_spec, plan_recipe


def check_lora_targets(recipe, spec) -> None:
    """Unknown LoRA target names would silently train (and estimate) fewer layers: FtwizError naming them."""
    names = set(spec.module_names())  # as the model names them (phi3: qkv_proj, gate_up_proj), what peft matches
    unknown = [t for t in recipe.lora_target if t not in names | {"all", "all-linear"}]
    if unknown:
        raise FtwizError(f"LoRA target {', '.join(unknown)} is not a linear layer of this {spec.model_type} model",
                         where="--lora-targets / lora_target",
                         fix=f"use all, or some of: {', '.join(sorted(names))}")


def export_problems(recipe) -> list[str]:
    """Whether the trained result could become a GGUF: checked now, when it costs nothing."""
    from ftwiz.core.export.preflight import check_exportable
    from ftwiz.core.models import resolve_model

    try:
        model_dir = resolve_model(recipe.model_name_or_path, revision=recipe.revision)
    except FtwizError:
        return []  # only a config was given: nothing to check yet
    if not model_dir.is_dir() or not any(model_dir.glob("*.safetensors")):
        return []
    return check_exportable(model_dir, quants=list(recipe.export_quant)).problems


def plan_job(recipe, hardware=None, *, vram_gb: float | None = None, dataset_lengths: list[int] | None = None,
             seq_len: int | None = None, spec=None, export_check: bool = True) -> Plan:
    """The plan for ``recipe`` on ``hardware`` (a HardwareReport) or a GPU of ``vram_gb`` GiB.

    ``dataset_lengths``: the training split's token lengths (None: plan for ``cutoff_len``); ``seq_len``
    overrides them. ``spec``: the model's shape when the caller loaded it already. Raises FtwizError for
    LoRA targets the model does not have. The plan's warnings end with the export preflight's problems.
    """
    spec = spec or load_model_spec(recipe.model_name_or_path)
    check_lora_targets(recipe, spec)
    plan = plan_recipe(recipe, hardware, vram_gb=vram_gb, dataset_lengths=dataset_lengths, seq_len=seq_len,
                       spec=spec)
    if export_check:
        plan.warnings.extend(f"export preflight: {problem}" for problem in export_problems(recipe))
    return plan
