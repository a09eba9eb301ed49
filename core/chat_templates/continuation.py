"""Continuing an earlier run's adapter (``--from RUN``, ``adapter_name_or_path``) in the same chat format.

An SFT -> DPO sequence trains one adapter twice. When the second recipe renders its data with another
template (a different ``template:``, or none where the SFT run named one, or another ``enable_thinking``),
the adapter learns a second chat format on top of the first, and export serves only the second: the SFT
part is then prompted in a format it never saw. Checked from the earlier run's template of record and the
new recipe alone, before anything loads.
"""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.chat_templates.named import NAMED_TEMPLATES
from ftwiz.core.chat_templates.record import (
    TemplateOfRecord,
    _read_file,
    record_of_model_dir,
    template_kind,
    with_thinking_default,
)
from ftwiz.core.errors import FtwizError, Location


def _describe(source: str, name: str | None, thinking: bool | None) -> str:
    what = {"model": "the model's own chat template", "named": f"template '{name}'",
            "file": f"the template file {name}", "inline": "the recipe's Jinja template"}.get(source, source)
    return what + ("" if thinking is None else f" with enable_thinking {str(thinking).lower()}")


def _same(record: TemplateOfRecord, template: str | None, enable_thinking: bool | None) -> bool:
    if record.enable_thinking != enable_thinking:
        return False
    if template is None:  # the model's own: the earlier run's text when it used the model's own too
        return record.source == "model"
    kind = template_kind(template)
    text = NAMED_TEMPLATES.get(template) if kind == "named" else template if kind == "inline" else \
        _read_file(template, None)
    return text is not None and with_thinking_default(text, enable_thinking) == record.template


def check_continuation(adapter_dir: Path, template: str | None, enable_thinking: bool | None) -> None:
    """Raise FtwizError when a recipe's ``template``/``enable_thinking`` would render another chat format than
    the run whose adapter (``adapter_dir``) it continues; nothing when that run recorded no template."""
    record = record_of_model_dir(adapter_dir)
    if record is None or _same(record, template, enable_thinking):
        return
    earlier = _describe(record.source, record.name, record.enable_thinking)
    now = _describe("model" if template is None else template_kind(template), template, enable_thinking)
    if record.source == "model":
        fix = "remove `template:` from this recipe (the earlier run used the model's own)"
    elif record.source == "inline":
        fix = "copy the earlier run's `template:` Jinja into this recipe"
    else:
        fix = f"set `template: {record.name}` in this recipe"
    if record.enable_thinking != enable_thinking:
        fix += (", and remove `enable_thinking:`" if record.enable_thinking is None
                else f", and set `enable_thinking: {str(record.enable_thinking).lower()}`")
    raise FtwizError(f"the adapter it continues ({adapter_dir}) was trained with {earlier}, but this recipe renders "
                     f"its data with {now}: the adapter would learn a second chat format, and export would serve "
                     "only that one", where=Location(field="template"),
                     fix=fix + "; or train from the base model (no --from / adapter_name_or_path)")
