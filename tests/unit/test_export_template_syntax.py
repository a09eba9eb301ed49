"""A chat template that does not parse is named (file, line) by the export, before any GGUF is written.

The oracle is transformers' own template compiler: every template it compiles, the export accepts, and what
it refuses, the export refuses. Without the check such a model exported without a word and the GGUF then
failed to load in llama-cpp-python.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError

GOOD = [
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
    "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
    "{% else %}{{ m.content }}{% endif %}{% endfor %}",  # transformers' assistant-mask block
    "{% for m in messages %}{% if loop.index > 3 %}{% break %}{% endif %}{{ m.content }}{% endfor %}",
]
BAD = [
    "{% for m in messages %}{{ m.content }{% endfor %}",
    "{% for m in messages %}{{ m.content }}",
    "{% if messages %}{% generation %}x{% endif %}",
]


def _real_templates(shared: Path) -> list[str]:
    found = []
    for folder in sorted((shared / "tokenizers").iterdir()):
        jinja = folder / "chat_template.jinja"
        config = folder / "tokenizer_config.json"
        if jinja.is_file():
            found.append(jinja.read_text(encoding="utf-8"))
        elif config.is_file() and isinstance(json.loads(config.read_text(encoding="utf-8")).get("chat_template"), str):
            found.append(json.loads(config.read_text(encoding="utf-8"))["chat_template"])
    return found


def test_the_check_agrees_with_transformers(shared_dir: Path, tmp_path: Path) -> None:
    from ftwiz.core.chat_templates.named import NAMED_TEMPLATES
    from ftwiz.core.export.template_syntax import check_chat_template
    from jinja2 import TemplateError
    from transformers.utils.chat_template_utils import _compile_jinja_template

    templates = [*GOOD, *BAD, *_real_templates(shared_dir), *NAMED_TEMPLATES.values()]
    assert len(templates) > 20
    for text in templates:
        try:
            _compile_jinja_template(text)
            compiles = True
        except TemplateError:
            compiles = False
        try:
            check_chat_template(text, tmp_path)
            accepted = True
        except FtwizError:
            accepted = False
        assert accepted == compiles, text[:80]
        assert compiles == (text not in BAD)


def test_export_names_the_file_and_line_and_writes_nothing(tiny_qwen2: Path, tmp_path: Path) -> None:
    from ftwiz.core.export.convert import convert_to_gguf

    model = tmp_path / "model"
    shutil.copytree(tiny_qwen2, model)
    (model / "chat_template.jinja").write_text("{% for m in messages %}\n{{ m.content }\n{% endfor %}")
    out = tmp_path / "out"
    with pytest.raises(FtwizError, match="does not parse as Jinja") as err:
        convert_to_gguf(model, out / "m.gguf", "F16")
    assert err.value.where.file == model / "chat_template.jinja" and err.value.where.line == 2
    assert "line 2" in err.value.fix
    assert not out.exists() or not list(out.iterdir())


def test_a_template_that_parsed_once_is_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Later exports of the same template skip jinja2 (its import and the parse are ~0.05 s of an export)."""
    from ftwiz.core.export import template_syntax

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    template_syntax.check_chat_template(GOOD[0], tmp_path)

    def parser_used():
        raise AssertionError("parsed again")

    monkeypatch.setattr(template_syntax, "_parser", parser_used)
    template_syntax.check_chat_template(GOOD[0], tmp_path)  # remembered
    with pytest.raises(AssertionError, match="parsed again"):
        template_syntax.check_chat_template(GOOD[1], tmp_path)  # another template is parsed
