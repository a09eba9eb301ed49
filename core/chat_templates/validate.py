"""What ``ftwiz recipe validate`` checks about ``template:`` before training would: the file exists, and
whether the named/given template replaces the base model's own (the same warning ``train`` prints).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftwiz.core.chat_templates.record import resolve_template, template_kind
from ftwiz.core.errors import FtwizError, Location


def check_template_file(recipe: Any, recipe_file: str | Path) -> None:
    """FtwizError naming ``template:``, the path and the recipe when ``template:`` is a missing/empty file.

    The path is read as training reads it (relative to the current directory), so validate and train agree.
    """
    value = recipe.template
    if value is None or template_kind(value) == "named":
        return
    if template_kind(value) == "inline":
        _check_syntax(value, Location(file=recipe_file, field="template"), "in the recipe's template:")
        return
    path = Path(value).expanduser()
    if not path.is_file():
        raise FtwizError(f"template: {value}: chat template file not found ({path.resolve()})",
                         where=Location(file=recipe_file, field="template"),
                         fix="fix the path (it is read relative to the directory you run ftwiz in), or use a "
                             "template name or Jinja text, or drop `template:` to keep the model's own")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a template saved as UTF-16 by an editor
        raise FtwizError(f"template: {value}: the chat template file is not UTF-8 text (byte {exc.start})",
                         where=Location(file=path), fix="re-save it as UTF-8") from None
    if not text.strip():
        raise FtwizError(f"template: {value}: chat template file is empty", where=Location(file=recipe_file,
                         field="template"), fix="write the Jinja chat template into it")
    _check_syntax(text, Location(file=path), f"in {path.name}")


def _check_syntax(text: str, where: Location, place: str) -> None:
    """FtwizError with the template's line when it does not compile as transformers compiles chat templates
    (training would stop there, after the run folder was made)."""
    import jinja2
    from transformers.utils.chat_template_utils import _compile_jinja_template

    try:
        _compile_jinja_template(text)
    except jinja2.TemplateSyntaxError as exc:
        if where.file is not None and where.field is None:
            where = Location(file=where.file, line=exc.lineno)
        raise FtwizError(f"the chat template does not parse as Jinja: {exc.message} (line {exc.lineno} {place})",
                         where=where, fix=f"fix line {exc.lineno} of the template, or drop `template:` to keep the "
                                          "model's own") from None


def _local_model_dir(recipe: Any) -> Path | None:
    """The base model's folder when it is already here (no download, no demo build); else None."""
    from ftwiz.core.models import resolve_model

    name = recipe.model_name_or_path
    if name == "demo":
        from ftwiz.core.tiny.demo import demo_base_model_dir, demo_base_model_ready

        return demo_base_model_dir() if demo_base_model_ready() else None
    try:
        return resolve_model(name, revision=getattr(recipe, "revision", None))
    except FtwizError:
        return None  # not downloaded yet: train will say so; validate only checks what is here


def template_warnings(recipe: Any) -> list[str]:
    """The warnings ``train`` gives about the template (a named template over the model's own, an unread
    enable_thinking), computed from the base's tokenizer when the base is on this machine; [] otherwise."""
    if recipe.template is None:
        return []
    model_dir = _local_model_dir(recipe)
    if model_dir is None:
        return []
    from ftwiz.core.models import load_tokenizer

    heard: list[str] = []
    warn: Callable[[str], None] = heard.append
    resolve_template(load_tokenizer(model_dir, recipe), recipe.template,
                     enable_thinking=getattr(recipe, "enable_thinking", None), warn=warn)
    return heard
