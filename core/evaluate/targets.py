"""What ``ftwiz eval TARGET`` points at: a run, a Hugging Face model or adapter folder, or a GGUF file.

Resolution happens before any model is loaded, so a wrong path fails in milliseconds with a message
naming the path. A GGUF inside a run (``runs/<name>/export/model.gguf``) is evaluated against that run's
held-out split and its base model, and its report lands in the run's ``eval/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ftwiz.core.adapter_config import adapter_base_model, is_adapter_dir
from ftwiz.core.chat_templates import TemplateOfRecord
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.models import resolve_model
from ftwiz.core.rundir import RunDir

ModelKind = Literal["hf", "adapter", "gguf"]


@dataclass(frozen=True)
class ModelSpec:
    """A model to run: a full HF folder, a LoRA adapter on ``base_path``, or a GGUF file."""

    kind: ModelKind
    path: Path
    base_path: Path | None = None

    @property
    def engine_name(self) -> str:
        return {"hf": "hf", "adapter": "hf+adapter", "gguf": "gguf"}[self.kind]


@dataclass(frozen=True)
class Target:
    tuned: ModelSpec
    base: ModelSpec | None
    run: RunDir | None
    tokenizer_dir: Path | None  # the HF tokenizer the tuned model was trained with
    template_name: str | None = None
    chat_template: str | None = None  # the run's template of record (run card), when the run recorded one
    enable_thinking: bool | None = None
    system: str | None = None
    cutoff_len: int = 1024
    overlength: str | None = None  # the run's drop/truncate of records over cutoff_len; None without a run
    method: str | None = None  # the run's finetuning method (lora, qlora, full), when known
    stage: str = "sft"  # the run's training stage (sft, pt, dpo, orpo, kto)
    pref_beta: float = 0.1  # the run's beta: scales the implicit rewards of preference stages


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()


def is_gguf(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"GGUF"


def _run_above(path: Path) -> RunDir | None:
    for parent in path.resolve().parents:
        if (parent / "recipe.yaml").is_file():
            return RunDir(parent)
    return None


def _adapter_base(adapter_dir: Path) -> Path:
    base = adapter_base_model(adapter_dir)
    if not base:
        raise FtwizError("the adapter does not say which base model it was trained on",
                         where=Location(file=adapter_dir / "adapter_config.json", field="base_model_name_or_path"),
                         fix="pass the base model with --base")
    return resolve_model(str(base))


def _run_models(run: RunDir) -> tuple[ModelSpec, Path, dict]:
    """The tuned model of a run, its base model path, and what the recipe and card say about prompts."""
    from ftwiz.core.recipe import load_recipe

    recipe = load_recipe(run.recipe)
    card = run.read_json(run.run_card) if run.run_card.is_file() else {}
    # The card's absolute path is exact; a run copied to another machine falls back to the recipe's name.
    card_base = Path(card["base_model"]) if card.get("base_model") else None
    base_path = card_base if card_base and card_base.is_dir() else resolve_model(recipe.model_name_or_path)
    if is_adapter_dir(run.adapter):
        tuned = ModelSpec("adapter", run.adapter, base_path)
    elif (run.model / "config.json").is_file():
        tuned = ModelSpec("hf", run.model)
    elif (run.merged / "config.json").is_file():
        tuned = ModelSpec("hf", run.merged)
    else:
        raise FtwizError(f"run '{run.name}' has no trained model yet (no adapter/, model/ or merged/)",
                         where=Location(file=run.root),
                         fix=f"finish training first (`ftwiz train {run.recipe}`), or check the run's events.jsonl")
    record = TemplateOfRecord.from_card(card)
    info = {"template_name": recipe.template, "system": recipe.system, "cutoff_len": recipe.cutoff_len,
            "overlength": recipe.overlength,
            "method": str(card.get("method") or recipe.finetuning_type), "stage": recipe.stage,
            "pref_beta": recipe.pref_beta,
            "chat_template": record.template if record else None,
            "enable_thinking": record.enable_thinking if record else getattr(recipe, "enable_thinking", None)}
    return tuned, base_path, info


def resolve_target(target: str | Path, base: str | Path | None = None) -> Target:
    """Work out the tuned model, the base to compare with, the run (if any) and the tokenizer to use."""
    path = Path(target).expanduser()
    base_override = ModelSpec("hf", resolve_model(str(base))) if base else None
    if path.is_file():
        if not is_gguf(path):
            raise FtwizError(f"{path} is neither a run, a model folder nor a GGUF file", where=Location(file=path),
                             fix="give a run directory or name, a Hugging Face model folder, or a .gguf file")
        from ftwiz.core.registry import run_of_export

        run = _run_above(path) or run_of_export(path)  # exported with --out elsewhere: its run, by the registry
        if run is None:  # moved, renamed or copied from elsewhere: prompted as its export recorded, if it did
            from ftwiz.core.trained_context import read_gguf_context

            context = read_gguf_context(path)
            return Target(tuned=ModelSpec("gguf", path.resolve()), base=base_override, run=None, tokenizer_dir=None,
                          system=context.system if context else None,
                          enable_thinking=context.enable_thinking if context else None)
        trained, base_path, info = _run_models(run)
        tokenizer_dir = trained.path if _has_tokenizer(trained.path) else base_path
        return Target(tuned=ModelSpec("gguf", path.resolve()), base=base_override or ModelSpec("hf", base_path),
                      run=run, tokenizer_dir=tokenizer_dir, **info)
    if path.is_dir() and not (path / "recipe.yaml").is_file():
        if is_adapter_dir(path):
            base_path = base_override.path if base_override else _adapter_base(path)
            tokenizer_dir = path if _has_tokenizer(path) else base_path
            return Target(tuned=ModelSpec("adapter", path.resolve(), base_path),
                          base=base_override or ModelSpec("hf", base_path), run=None, tokenizer_dir=tokenizer_dir)
        model_dir = resolve_model(str(path))
        return Target(tuned=ModelSpec("hf", model_dir), base=base_override, run=None, tokenizer_dir=model_dir)
    run = RunDir.resolve(target)
    tuned, base_path, info = _run_models(run)
    tokenizer_dir = tuned.path if _has_tokenizer(tuned.path) else base_path
    return Target(tuned=tuned, base=base_override or ModelSpec("hf", base_path), run=run,
                  tokenizer_dir=tokenizer_dir, **info)
