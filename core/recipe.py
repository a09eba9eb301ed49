"""The recipe: one YAML file that describes a fine-tuning job from model to export.

Field names follow LLaMA-Factory (and Axolotl where LLaMA-Factory has none) so users can port their
YAML: ``model_name_or_path``, ``dataset``, ``template``, ``finetuning_type``, ``lora_rank``,
``lora_alpha``, ``lora_target``, ``cutoff_len``, ``per_device_train_batch_size``,
``gradient_accumulation_steps``, ``learning_rate``, ``num_train_epochs``... The schema is strict: an
unknown key is an error that names its path and the closest valid key, because a typo that silently
falls back to a default wastes hours of GPU time.

Fields left as ``None`` (``per_device_train_batch_size``, ``gradient_checkpointing``, ``optim``...) are
chosen by the planner for the detected hardware.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from ftwiz.core.column_roles import RoleMap
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.quant_types import QuantName
from ftwiz.core.recipe_values import (
    DEFAULT_HELD_OUT,
    MAX_EPOCHS,
    MAX_STEPS,
    epochs_problem,
    held_out_sum_problem,
    max_steps_problem,
    val_size_problem,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Method = Literal["full", "lora", "qlora"]
DataFormat = Literal["auto", "alpaca", "sharegpt", "openai", "dpo", "text"]
Stage = Literal["sft", "pt", "dpo", "orpo", "kto"]
# TRL DPOConfig.loss_type values that need nothing but pairs (LLaMA-Factory's pref_loss names where they exist)
PrefLoss = Literal["sigmoid", "hinge", "ipo", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "aot",
                   "aot_pair", "apo_zero", "apo_down", "discopop", "sigmoid_norm"]
ReportTo = Literal["none", "tensorboard", "mlflow", "wandb"]
QuantType = QuantName  # the GGUF types of core/quant_types.py

class Recipe(BaseModel):
    """A fine-tuning job. See ``ftwiz recipe new`` for a commented template of every field."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- model -------------------------------------------------------------------------------
    model_name_or_path: str = Field(description="Local model dir, hub id in the HF cache, or 'demo'")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin")
    trust_remote_code: bool = Field(False, description="Run model code shipped with the checkpoint")

    # --- data --------------------------------------------------------------------------------
    dataset: list[str] = Field(description="Files, directories, globs, or names in dataset_info.json")
    dataset_dir: str | None = Field(None, description="Folder holding dataset_info.json (LLaMA-Factory)")
    formatting: DataFormat = Field("auto", description="Record format; auto-detected when 'auto'")
    columns: RoleMap | None = Field(None, description="Map of our field names to your column names")
    sample_by: Literal["line", "paragraph", "document"] = Field(
        "line", description=".txt files (text format): one record a line, a blank-line-separated paragraph, "
                            "or the whole file (the `datasets` text builder's sample_by)")
    template: str | None = Field(None, description="Chat template: unset = the model's own; a LLaMA-Factory "
                                 "name (alpaca, chatml, qwen, qwen3, llama3, mistral, gemma, phi...), Jinja "
                                 "text, or a .jinja file path")
    enable_thinking: bool | None = Field(None, description="Thinking templates (qwen3): true/false; null = "
                                         "the template's default")
    system: str | None = Field(None, description="Default system prompt for records without one; its {{name}} "
                               "placeholders are filled from variables: like the data's")
    system_filled: bool = Field(False, description="Set by ftwiz in a run's recipe.yaml: system is stored with its "
                                "{{name}} placeholders filled, and is trained as written, not filled again (a "
                                "value's own {{other}} stays literal when the run's recipe is trained again)")
    variables: dict[str, str] = Field(default_factory=dict, description="Values for {{name}} placeholders in "
                                      "the data and system, e.g. {name: Aria, author: Sam} for identity datasets")
    allow_placeholders: bool = Field(False, description="Train even when {{name}} placeholders are left "
                                     "unfilled (they are then learned literally)")
    cutoff_len: int = Field(1024, ge=16, le=1_048_576, description="Max tokens per training sample")
    overlength: Literal["drop", "truncate"] = Field("drop", description="What to do with longer conversations "
                                                       "(raw-text documents are split into blocks instead)")
    train_on_prompt: bool = Field(False, description="Also learn the prompt tokens (default: answers only)")
    mask_history: bool = Field(False, description="Learn only the last assistant turn of each conversation")
    packing: bool = Field(False, description="Pack several samples into one sequence")
    dedup: bool = Field(True, description="Remove exact duplicates")
    near_dedup_threshold: float | None = Field(0.9, ge=0.0, le=1.0, description="MinHash Jaccard; null = off")
    val_size: float = Field(DEFAULT_HELD_OUT, description="Held out for validation: a share of the records (below "
                            "1), or a number of records (1 or more), as in LLaMA-Factory")
    test_size: float = Field(DEFAULT_HELD_OUT, ge=0.0, lt=1.0, description="Share of records held out for testing")
    mix_dataset: str | None = Field(None, description="A general dataset mixed in against forgetting")
    mix_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Share of the mix dataset in training")
    max_samples: int | None = Field(None, ge=1, description="Use at most this many records")

    # --- method ------------------------------------------------------------------------------
    finetuning_type: Method = Field("qlora", description="full, lora, or qlora (LoRA on a 4-bit base)")
    quantization_bit: Literal[4] | None = Field(None, description="LLaMA-Factory style: 4 with lora = qlora")
    lora_rank: int = Field(16, ge=1, le=1024)
    lora_alpha: int | None = Field(None, ge=1, description="Default: 2 x lora_rank")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    lora_target: list[str] = Field(default_factory=lambda: ["all"], description="Module names, or 'all'")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (slower, sometimes better)")
    adapter_name_or_path: str | None = Field(None, description="Start from this LoRA adapter: a folder, or a run "
                                             "name whose adapter to continue (e.g. an SFT run before DPO)")

    # --- stage (LLaMA-Factory's names) ---------------------------------------------------------
    stage: Stage = Field("sft", description="sft (answers), pt (raw text, packed), or preference alignment: "
                         "dpo, orpo (chosen/rejected pairs), kto (good/bad answers)")
    pref_beta: float = Field(0.1, gt=0.0, description="dpo/orpo/kto: beta, how far from the reference "
                             "the model may move (dpo/kto) or the odds-ratio weight (orpo)")
    pref_loss: PrefLoss = Field("sigmoid", description="dpo loss: sigmoid (DPO), hinge, ipo, robust, ...")
    pref_ftx: float = Field(0.0, ge=0.0, description="dpo: weight of an added SFT loss on the chosen answers")
    kto_chosen_weight: float = Field(1.0, gt=0.0, description="kto: weight of the desirable answers' loss")
    kto_rejected_weight: float = Field(1.0, gt=0.0, description="kto: weight of the undesirable answers' loss")

    # --- training ----------------------------------------------------------------------------
    per_device_train_batch_size: int | None = Field(None, ge=1, description="Micro-batch; None = planner")
    gradient_accumulation_steps: int | None = Field(None, ge=1, description="None = planner")
    effective_batch_size: int = Field(16, ge=1, description="Target micro-batch x accumulation")
    learning_rate: float = Field(2e-4, gt=0.0, lt=1.0)
    num_train_epochs: float = Field(3.0, description=f"Passes over the data (more than 0, at most {MAX_EPOCHS})")
    max_steps: int = Field(-1, description=f"Stop after this many optimizer steps (1 to {MAX_STEPS:,}); "
                           "-1: train for num_train_epochs")
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, ge=0.0, description="Clip gradients to this norm; 0 turns clipping off "
                                 "(as in transformers' Trainer)")
    gradient_checkpointing: bool | None = Field(None, description="None = planner decides")
    optim: str | None = Field(None, description="None = paged_adamw_8bit on CUDA, adamw_torch on CPU")
    compute_dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (None: each epoch)")
    save_steps: int | None = Field(None, ge=1, description="Checkpoint every N steps (None: each epoch)")
    save_total_limit: int = Field(3, ge=1, description="Keep the last N checkpoints")
    logging_steps: int = Field(1, ge=1)
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed (numpy's range: 0 to 2**32 - 1)")
    run_name: str | None = Field(None, description="Run directory name under runs/")
    report_to: list[ReportTo] = Field(default_factory=lambda: ["none"], description="Also log to: tensorboard, "
                                      "mlflow (both into the run folder), wandb; needs `pip install ftwiz[tracking]`")

    # --- export ------------------------------------------------------------------------------
    export_quant: list[QuantType] = Field(default_factory=lambda: ["Q4_K_M"])
    ollama_name: str | None = Field(None, description="Register the result in Ollama under this name")

    @field_validator("export_quant", mode="before")
    @classmethod
    def _quant_names(cls, value: Any) -> Any:
        """One type or a comma list as text, in any case (`ftwiz export --quant q4_k_m` takes lower case too)."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return [v.upper() if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    @field_validator("dataset", "lora_target", "report_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, value: Any, info: Any) -> Any:  # pydantic would read true as 1, false as 0
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation in (int, float, int | None,
                                                                                          float | None):
            raise ValueError(f"{str(value).lower()} is a yes/no value (YAML reads yes/no/on/off so), not a number")
        return value

    @field_validator("max_steps", "num_train_epochs", "val_size")
    @classmethod
    def _in_range(cls, value: float, info: Any) -> float:  # info: pydantic's ValidationInfo
        rule = {"max_steps": max_steps_problem, "num_train_epochs": epochs_problem, "val_size": val_size_problem}
        problem = rule[info.field_name](value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("run_name")
    @classmethod
    def _plain_run_name(cls, value: str | None) -> str | None:
        from ftwiz.core.paths import run_name_problem, safe_name

        problem = run_name_problem(value) if value else None
        if problem:
            raise ValueError(f"the run name {problem}; use a plain folder name like '{safe_name(value)}'")
        return value

    @field_validator("variables", mode="before")
    @classmethod
    def _variables_as_text(cls, value: object) -> object:
        """YAML reads `year: 2024` as a number; a placeholder is filled with text either way."""
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) or v is None or isinstance(v, (dict, list)) else str(v)
                    for k, v in value.items()}
        return value

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        from ftwiz.core.chat_templates import TEMPLATE_NAMES
        from ftwiz.core.chat_templates.record import template_kind

        if value is not None and template_kind(value) == "named" and value not in TEMPLATE_NAMES:
            raise ValueError(f"unknown chat template '{value}'; supported: {', '.join(TEMPLATE_NAMES)} "
                             "(or Jinja text, or a .jinja file path)")
        return value

    @model_validator(mode="after")
    def _normalise(self) -> Recipe:
        if self.quantization_bit == 4 and self.finetuning_type == "lora":
            object.__setattr__(self, "finetuning_type", "qlora")
        if self.quantization_bit == 4 and self.finetuning_type == "full":
            raise ValueError("quantization_bit: 4 cannot be combined with finetuning_type: full")
        if self.adapter_name_or_path and self.finetuning_type == "full":  # LLaMA-Factory refuses it too
            raise ValueError("adapter_name_or_path continues a LoRA adapter, but finetuning_type: full trains every "
                             "weight and would ignore it: use finetuning_type: lora (or qlora), or remove "
                             "adapter_name_or_path")
        problem = held_out_sum_problem(self.val_size, self.test_size, "test_size" in self.model_fields_set)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def resolved_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_rank


FIELD_NAMES = tuple(Recipe.model_fields)


def _closest(key: str) -> str | None:
    match = difflib.get_close_matches(key, FIELD_NAMES, n=1, cutoff=0.6)
    return match[0] if match else None


def _line_of_key(text: str, key: str) -> int | None:
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith(f"{key}:"):
            return number
    return None


def parse_recipe(data: Any, *, source: str | Path = "<recipe>", text: str = "") -> Recipe:
    """Validate a decoded recipe, turning pydantic's errors into one readable FtwizError."""
    if not isinstance(data, dict):
        raise FtwizError(
            "a recipe must be a mapping of keys to values",
            where=Location(file=source),
            fix="start from `ftwiz recipe new` and edit the values",
        )
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        first_line: int | None = None
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]) or "(top level)"
            top = str(err["loc"][0]) if err["loc"] else ""
            line = _line_of_key(text, top) if top else None
            first_line = first_line or line
            where = f"line {line}, " if line else ""
            if err["type"] == "extra_forbidden":
                hint = _closest(top)
                suggestion = f" (did you mean '{hint}'?)" if hint else ""
                problems.append(f"{where}unknown key '{path}'{suggestion}")
            elif err["type"] == "missing":
                problems.append(f"{where}missing required key '{path}'")
            else:
                msg = err["msg"].removeprefix("Value error, ")  # pydantic's wording for our validators' reasons
                # a rule across keys (the model validator) names its keys itself; its input is the whole recipe
                problems.append(f"{where}'{path}': {msg} (got {err.get('input')!r})" if err["loc"] else msg)
        raise FtwizError(
            "invalid recipe:\n  - " + "\n  - ".join(problems),
            where=Location(file=source, line=first_line if len(problems) == 1 else None),
            fix="correct the keys above; `ftwiz recipe new` prints every valid key with its meaning",
        ) from None


class DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping: YAML keeps the last silently, so an edit of the first does nothing."""

    def __init__(self, key: object, first_line: int, mark: yaml.Mark) -> None:
        super().__init__(problem=f"'{key}' is set twice, on lines {first_line} and {mark.line + 1}", problem_mark=mark)
        self.key = key


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing a key set twice in one mapping (``<<`` merges may still override)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise DuplicateKey(key, seen[key], key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_TYPED_SCALARS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


def _variables_as_written(text: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each ``variables:`` value YAML read as a number or boolean put back as the text written:
    a placeholder is filled with what the user typed (``version: 1.50`` is "1.50", not "1.5"; ``ok: yes`` is
    "yes", not "True"; ``at: 12:30`` is "12:30", not YAML 1.1's 750), as ``--var version=1.50`` fills it."""
    if not isinstance(data.get("variables"), dict):
        return data
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    written = {}
    for key_node, value_node in getattr(root, "value", []) if isinstance(root, yaml.MappingNode) else []:
        if key_node.value == "variables" and isinstance(value_node, yaml.MappingNode):
            written = {k.value: v.value for k, v in value_node.value
                       if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode) and v.tag in _TYPED_SCALARS}
    variables = {k: written.get(str(k), v) if isinstance(v, (bool, int, float)) else v
                 for k, v in data["variables"].items()}
    return {**data, "variables": variables}


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.exists():
        raise FtwizError(f"recipe file not found: {path}", fix="check the path, or create one with `ftwiz recipe new`")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FtwizError(f"cannot read recipe {path}: {exc}", fix="make sure it is a readable UTF-8 text file") from None
    try:
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as exc:
        raise FtwizError(str(exc.problem), where=Location(file=path, field=str(exc.key),
                         line=exc.problem_mark.line + 1 if exc.problem_mark else None),
                         fix="delete one of the two lines: YAML keeps only the last, so the first is ignored") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FtwizError(
            f"recipe is not valid YAML: {getattr(exc, 'problem', exc)}",
            where=Location(file=path, line=mark.line + 1 if mark else None),
            fix="check indentation and quoting on that line",
        ) from None
    if isinstance(data, dict):
        data = _variables_as_written(text, data)
    return parse_recipe(data, source=path, text=text)


# YAML's line breaks and tabs: a string holding one is written double-quoted, where PyYAML escapes them (\N, \L,
# \P, \r, \t), so it reads back exactly (single-quoted, PyYAML wrote a NEL raw and read it back as a space)
_ESCAPE_IN_QUOTES = frozenset("\r\x85\u2028\u2029\t")


class _ExactDumper(yaml.SafeDumper):
    """``yaml.safe_dump``'s dumper, writing strings with breaks YAML would fold in double quotes (see above)."""


def _exact_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _ESCAPE_IN_QUOTES.intersection(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_ExactDumper.add_representer(str, _exact_str)


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML with every field resolved (what a run directory stores); load_recipe reads every string
    back byte for byte (NEL, U+2028/U+2029, CR, tabs, leading/trailing spaces and newlines included)."""
    return yaml.dump(recipe.model_dump(mode="json"), Dumper=_ExactDumper, sort_keys=False, allow_unicode=True)


def recipe_template() -> str:
    """A commented template listing every key, its default and its meaning (``ftwiz recipe new``)."""
    lines = [
        "# ftwiz recipe: edit the values, then run `ftwiz train THIS_FILE.yaml`.",
        "# Keys follow LLaMA-Factory's names. Leave a value as null to let the planner choose it.",
        "",
    ]
    for name, field in Recipe.model_fields.items():
        if field.is_required():
            example = {"model_name_or_path": "demo", "dataset": ["demo"]}[name]
        else:
            example = field.get_default(call_default_factory=True)
        if field.description:
            lines.append(f"# {field.description}")
        value = yaml.safe_dump(example, default_flow_style=True).strip()
        value = value.removesuffix("...").strip()  # PyYAML ends a lone scalar document with '...'
        lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"
