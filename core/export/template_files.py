"""The chat template(s) the GGUF carries: the ones transformers renders with, files before tokenizer_config.json.

A model folder may hold its template twice: ``chat_template`` in tokenizer_config.json and a
``chat_template.jinja`` file (hub repos that later shipped a fixed template as a file keep the old entry;
``additional_chat_templates/*.jinja`` hold named ones). transformers 5 lets the files win
(``PreTrainedTokenizerBase._from_pretrained``: "independent chat template file(s) ... take priority over
template entries in the tokenizer config"), so training renders with the file. gguf-py's ``SpecialVocab`` lets
tokenizer_config.json win, as llama.cpp's converter does; a GGUF written that way serves every chat in a format
the model was not trained on. This module gives the template as transformers loads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

Template = str | Sequence[Mapping[str, str]] | None  # gguf-py's SpecialVocab.chat_template


def transformers_chat_template(model_dir: Path, from_config: Template) -> Template:
    """``from_config`` (what SpecialVocab read) unless template files are present in ``model_dir``; then the
    files' templates: a string for chat_template.jinja alone, else [{"name", "template"}] with "default" first
    (the form GGUFWriter.add_chat_template writes as tokenizer.chat_template and tokenizer.chat_template.NAME).

    Raises OSError/UnicodeDecodeError as reading the files does (the export names unreadable files)."""
    model_dir = Path(model_dir)
    templates: dict[str, str] = {}
    default = model_dir / "chat_template.jinja"
    if default.is_file():
        templates["default"] = default.read_text(encoding="utf-8")
    extra = model_dir / "additional_chat_templates"
    if extra.is_dir():
        for path in sorted(extra.glob("*.jinja")):
            templates[path.stem] = path.read_text(encoding="utf-8")
    if not templates:
        return from_config
    if list(templates) == ["default"]:
        return templates["default"]
    return [{"name": name, "template": text} for name, text in templates.items()]
