"""The run's chat template of record: the one template training rendered data with, and where it goes.

Resolution (``template:`` in the recipe, or ``--template``):

- unset: the base tokenizer's own template (an error naming the supported names when it has none);
- a name from :data:`ftwiz.core.chat_templates.named.TEMPLATE_NAMES` (LLaMA-Factory's names); when the
  base tokenizer has a template of its own that differs, a warning names both;
- Jinja text (contains ``{{`` or ``{%``), or the path of a ``.jinja`` file.

An unknown bare name is refused with the list of supported names. When the recipe sets
``enable_thinking`` and the template reads that variable, the recipe's value becomes the template's
default (``{% if enable_thinking is not defined %}{% set ... %}``): the GGUF, Ollama and every llama.cpp
front end then render the way training did, while a runtime's explicit ``chat_template_kwargs`` still wins.

The template of record is saved into the adapter's and the merged model's tokenizer (``chat_template``
in tokenizer_config.json and ``chat_template.jinja``) and into the run card with its hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ftwiz.core.chat_templates.named import NAMED_SPECS, NAMED_TEMPLATES, TEMPLATE_NAMES
from ftwiz.core.errors import FtwizError, Location

Source = Literal["model", "named", "file", "inline"]
JINJA_SUFFIXES = (".jinja", ".j2", ".jinja2")


def template_hash(template: str) -> str:
    """First 16 hex digits of the SHA-256 of the template text (what run cards and reports show)."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


def own_template(tokenizer: Any) -> str | None:
    """The tokenizer's own chat template text (the default one when it carries several), or None."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    return template or None


def template_kind(value: str) -> Literal["inline", "file", "named"]:
    """How a ``template:`` value is read: Jinja text, a file path, or a name."""
    if "{{" in value or "{%" in value:
        return "inline"
    if value.endswith(JINJA_SUFFIXES) or "/" in value or "\\" in value:
        return "file"
    return "named"


def unknown_name_error(name: str, *, where: Location | str | None = None) -> FtwizError:
    import difflib

    close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return FtwizError(f"unknown chat template '{name}'{hint}", where=where,
                      fix=f"use one of {', '.join(TEMPLATE_NAMES)}; or Jinja text, or a .jinja file path; "
                          "or leave `template:` unset to keep the model's own")


def with_thinking_default(template: str, enable_thinking: bool | None) -> str:
    """Make the recipe's ``enable_thinking`` the template's default when the template reads it."""
    if enable_thinking is None or "enable_thinking" not in template:
        return template
    value = "true" if enable_thinking else "false"
    head = f"{{%- if enable_thinking is not defined -%}}{{%- set enable_thinking = {value} -%}}{{%- endif -%}}"
    return template if template.startswith(head) else head + template


@dataclass(frozen=True)
class TemplateOfRecord:
    """The chat template a run trained with; ``name`` is the named template or file it came from."""

    template: str
    source: Source
    name: str | None = None
    enable_thinking: bool | None = None

    @property
    def hash(self) -> str:
        return template_hash(self.template)

    def card_fields(self) -> dict[str, Any]:
        """What the run card stores (``chat_template`` is the full text, so a run needs nothing else)."""
        return {"chat_template": self.template, "template_hash": self.hash, "template_source": self.source,
                "template_name": self.name, "enable_thinking": self.enable_thinking}

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> TemplateOfRecord | None:
        """The record kept in a run card; None for runs trained before ftwiz recorded it."""
        text = card.get("chat_template")
        if not text:
            return None
        return cls(template=text, source=card.get("template_source") or "model", name=card.get("template_name"),
                   enable_thinking=card.get("enable_thinking"))


def _read_file(value: str, base_dir: Path | None) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).is_file():
        path = base_dir / path
    if not path.is_file():
        raise FtwizError(f"chat template file not found: {path}", where=Location(field="template"),
                         fix="give the path of a .jinja file, a template name, or Jinja text")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FtwizError(f"the chat template file is not UTF-8 text (byte {exc.start})", where=Location(file=path),
                         fix="re-save it as UTF-8") from None
    if not text.strip():
        raise FtwizError(f"chat template file {path} is empty", where=Location(file=path),
                         fix="write the Jinja chat template into it")
    return text


def resolve_template(tokenizer: Any, value: str | None, *, enable_thinking: bool | None = None,
                     base_dir: Path | None = None, warn: Any = None) -> TemplateOfRecord:
    """The template of record for a tokenizer and a recipe's ``template:`` value.

    ``warn`` (a callable taking one string) hears when a named or given template replaces the model's
    own. Raises FtwizError for an unknown name, a missing file, or no template at all.
    """
    own = own_template(tokenizer)
    if value is None:
        if own is None:
            raise FtwizError("this tokenizer has no chat template",
                             fix=f"set `template:` in the recipe to one of {', '.join(TEMPLATE_NAMES)} "
                                 "(alpaca or chatml suit a base model), or pass --template")
        record = TemplateOfRecord(own, "model", None, enable_thinking)
    else:
        kind = template_kind(value)
        if kind == "inline":
            record = TemplateOfRecord(value, "inline", None, enable_thinking)
        elif kind == "file":
            record = TemplateOfRecord(_read_file(value, base_dir), "file", value, enable_thinking)
        elif value in NAMED_TEMPLATES:
            record = TemplateOfRecord(NAMED_TEMPLATES[value], "named", value, enable_thinking)
        else:
            raise unknown_name_error(value)
        if own is not None and own != record.template and warn is not None:
            what = f"named template '{value}' ({NAMED_SPECS[value].description})" if kind == "named" else \
                f"the given template ({'file ' + value if kind == 'file' else 'Jinja text'})"
            warn(f"training uses {what} instead of the model's own chat template "
                 f"(hash {template_hash(own)}); export, chat and serving will use {what} too")
    final = with_thinking_default(record.template, enable_thinking)
    if enable_thinking is not None and final == record.template and warn is not None:
        warn("enable_thinking is set but this chat template does not read it; it has no effect")
    return TemplateOfRecord(final, record.source, record.name, enable_thinking)


def adopt_template(tokenizer: Any, recipe: Any, *, warn: Any = None) -> TemplateOfRecord:
    """Resolve a recipe's template of record and make it the tokenizer's own, so every folder saved from
    this tokenizer (checkpoints, adapter, full model) carries the template the data was rendered with."""
    record = resolve_template(tokenizer, recipe.template, enable_thinking=getattr(recipe, "enable_thinking", None),
                              warn=warn)
    tokenizer.chat_template = record.template
    return record


def write_template_files(folder: Path, template: str) -> None:
    """Put ``template`` into a saved tokenizer folder, the way transformers saves a chat template.

    ``chat_template.jinja`` is what transformers 5 writes and reads first; ``chat_template`` in
    tokenizer_config.json is what older readers (and gguf's SpecialVocab) read. Both are written so no
    reader can pick up a stale template.
    """
    from ftwiz.core.atomic import write_text_atomic

    folder = Path(folder)
    write_text_atomic(folder / "chat_template.jinja", template)
    config_path = folder / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("chat_template") != template:
            config["chat_template"] = template
            write_text_atomic(config_path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    stale = folder / "chat_template.json"  # a processor's template would shadow ours for some readers
    if stale.is_file():
        stale.unlink()


def record_of_run(run_root: Path) -> TemplateOfRecord | None:
    """The template of record of a run directory (from its run card), or None when it has none."""
    card_path = Path(run_root) / "run_card.json"
    if not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return TemplateOfRecord.from_card(card)


def record_of_model_dir(model_dir: Path) -> TemplateOfRecord | None:
    """The template of record for a model folder inside a run (adapter/, merged/, model/, export/...)."""
    for parent in (Path(model_dir).resolve(), *Path(model_dir).resolve().parents):
        if (parent / "recipe.yaml").is_file():
            return record_of_run(parent)
    return None
