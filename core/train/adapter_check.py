"""Is a recipe's ``adapter_name_or_path`` an adapter training can continue? Checked by ``ftwiz recipe validate``
and by ``ftwiz train`` before a run folder is made (peft used to find out after the model was loaded: a size
mismatch per tensor, or a pickled ``adapter_model.bin`` unpickled).

The checks read files and safetensors headers only, never weights: the folder (or run) resolves to an adapter
(core/train/model_setup.resolve_adapter), its files are a LoRA adapter in safetensors (the checks merge makes,
core/adapter_config.lora_adapter_files), and, when the recipe's base model is on this machine already, each LoRA
pair's shapes fit the base tensor it modifies (what peft's ``load_state_dict`` would refuse).
"""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.errors import FtwizError, Location

FIELD = "adapter_name_or_path"
LORA_PARTS = (".lora_A.weight", ".lora_B.weight")
PEFT_PREFIX = "base_model.model."  # peft's saved key prefix (export/adapter.py's PREFIX; the converter sits above)


def check_recipe_adapter(recipe, *, recipe_file: str | Path | None = None) -> Path | None:
    """The adapter folder the recipe continues (None when it starts a new one).

    Raises FtwizError naming the recipe file, the ``adapter_name_or_path`` field and the adapter path: no adapter
    there, a broken adapter_config.json, no adapter_model.safetensors, or LoRA shapes the base model does not have;
    or naming ``template`` when the recipe would render another chat format than the adapter's run
    (chat_templates/continuation.py).
    """
    from ftwiz.core.adapter_config import lora_adapter_files
    from ftwiz.core.chat_templates.continuation import check_continuation
    from ftwiz.core.train.model_setup import resolve_adapter

    value = recipe.adapter_name_or_path
    if not value:
        return None
    try:
        adapter = resolve_adapter(value)
    except FtwizError as exc:
        raise _named(exc, value, recipe_file) from None
    # SFT -> DPO: the same chat format as the run whose adapter continues (its own error names `template`)
    check_continuation(adapter, recipe.template, getattr(recipe, "enable_thinking", None))
    try:
        config, weights = lora_adapter_files(adapter)
        _check_fits_base(adapter, weights, config, recipe)
    except FtwizError as exc:
        raise _named(exc, value, recipe_file) from None
    return adapter


def _named(exc: FtwizError, value: str, recipe_file: str | Path | None) -> FtwizError:
    """``exc`` said of the recipe's field: the recipe file and field first, then the adapter file it is about."""
    inner = f"{exc.shown_where}: " if exc.shown_where and str(exc.where) != f"recipe: {FIELD}" else ""
    return FtwizError(f"{FIELD} '{value}': {inner}{exc.what}", where=Location(file=recipe_file, field=FIELD),
                      fix=exc.fix)


def _base_dir(recipe) -> Path | None:
    """The recipe's base model folder when finding it costs nothing (on disk, no download, no demo build)."""
    from ftwiz.core.models import resolve_model

    if recipe.model_name_or_path == "demo":
        from ftwiz.core.tiny.demo import demo_base_model_dir, demo_base_model_ready

        return demo_base_model_dir() if demo_base_model_ready() else None
    try:
        return resolve_model(recipe.model_name_or_path, revision=recipe.revision)
    except FtwizError:  # not here yet: train downloads (--download) or refuses it with its own message
        return None


def _check_fits_base(adapter: Path, weights: Path, config: dict, recipe) -> None:
    """FtwizError when a LoRA pair's shapes disagree with the base tensor it modifies, or when the base model has
    none of the modules the adapter modifies; nothing when the base is not on this machine."""
    from ftwiz.core.export.tensors import list_tensors, read_header  # headers only, as export's preflight

    refs, _ = read_header(weights)  # a cut or corrupt file is named here, as merge names it
    _check_rank(refs, config, adapter, weights)
    base = _base_dir(recipe)
    if base is None:
        return
    try:
        shapes = {r.name: tuple(r.shape) for r in list_tensors(base)}
    except FtwizError:  # a base without safetensors weights is train's to refuse, with its own message
        return
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for ref in refs:
        name = ref.name.removeprefix(PEFT_PREFIX)
        for part in LORA_PARTS:
            if name.endswith(part):
                pairs.setdefault(name[: -len(part)], {})[part] = tuple(ref.shape)
    found = 0
    recorded = config.get("base_model_name_or_path") or "another model"
    for module, parts in sorted(pairs.items()):
        target = _base_tensor(module, shapes)
        if target is None or len(parts) != 2 or len(shapes[target]) != 2:
            continue
        found += 1
        out_features, in_features = shapes[target]
        rank_in, rank_out = parts[".lora_A.weight"][1], parts[".lora_B.weight"][0]
        if (rank_out, rank_in) != (out_features, in_features):
            raise FtwizError(f"the adapter at {adapter} was trained on {recorded} and does not fit "
                             f"model_name_or_path '{recipe.model_name_or_path}': its LoRA pair for {module} is for "
                             f"a [{rank_out}, {rank_in}] weight, the base model's {target} is "
                             f"[{out_features}, {in_features}]", where=Location(file=weights),
                             fix=f"set model_name_or_path to the model the adapter was trained on ({recorded}), or "
                                 f"remove {FIELD} to train a new adapter")
    if pairs and not found:
        example = sorted(pairs)[0]
        raise FtwizError(f"the adapter at {adapter} was trained on {recorded}: the base model "
                         f"'{recipe.model_name_or_path}' has none of the {len(pairs)} modules it modifies "
                         f"(e.g. {example})", where=Location(file=weights),
                         fix=f"set model_name_or_path to the model the adapter was trained on ({recorded}), or "
                             f"remove {FIELD} to train a new adapter")


def _check_rank(refs, config: dict, adapter: Path, weights: Path) -> None:
    """FtwizError when adapter_config.json's ``r`` is not the rank of the weights (an edited config): peft builds
    the LoRA pairs at ``r`` and then fails to load each saved pair (a size mismatch per tensor). Skipped when
    ``rank_pattern`` gives some modules another rank."""
    rank = config.get("r", 8)  # peft's default
    if config.get("rank_pattern") or not isinstance(rank, int):
        return
    for ref in refs:
        if ref.name.endswith(".lora_A.weight") and len(ref.shape) == 2 and ref.shape[0] != rank:
            raise FtwizError(f"adapter_config.json says r: {rank}, but the adapter's weights have rank "
                             f"{ref.shape[0]} ({ref.name.removeprefix(PEFT_PREFIX)} is [{ref.shape[0]}, "
                             f"{ref.shape[1]}])", where=Location(file=adapter / "adapter_config.json", field="r"),
                             fix=f"set \"r\": {ref.shape[0]} in {adapter / 'adapter_config.json'} (the rank the "
                                 f"adapter was trained with; lora_rank: in a recipe does not change a continued "
                                 f"adapter), or remove {FIELD} to train a new adapter")


def _base_tensor(module: str, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The base weight a LoRA module modifies: ``{module}.weight``, or the one weight ending in its name from
    ``layers.`` on (a checkpoint whose tensor prefixes differ from the loaded model's, e.g. multimodal ones)."""
    if f"{module}.weight" in shapes:
        return f"{module}.weight"
    _head, sep, tail = module.partition("layers.")
    if not sep:
        return None
    matches = [name for name in shapes if name.endswith(f".layers.{tail}.weight")]
    return matches[0] if len(matches) == 1 else None
