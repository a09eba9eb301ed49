"""Does the chat template the GGUF will carry parse as Jinja? Checked by the export, once per template text.

A template with a syntax error (a hand edit: ``{{ m.content }``) used to export without a word; then
llama-cpp-python refused to load the file and ``--verify`` and ``ftwiz chat`` ended in a jinja2 traceback.
The check parses the template as transformers compiles it (sandboxed, ``loopcontrols``, and transformers'
``{% generation %}`` block for assistant masks) and names the file and the line.

Importing jinja2 and parsing cost ~0.05 s, a noticeable share of a one-second export, so a template that
parsed once is remembered (an empty marker named by its SHA-256 under the cache folder) and later exports of
it skip jinja2 entirely.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location


def _templates(chat_template: Any) -> list[tuple[str | None, str]]:
    """(name or None, text) of a tokenizer's chat template: one text, or a list of named ones."""
    if isinstance(chat_template, str):
        return [(None, chat_template)]
    if isinstance(chat_template, list):
        return [(t.get("name"), t["template"]) for t in chat_template
                if isinstance(t, dict) and isinstance(t.get("template"), str)]
    return []


def _marker(text: str) -> Path | None:
    from ftwiz.core.errors import FtwizError

    try:
        from ftwiz.core.paths import cache_dir

        rules = "jinja-parse-1"  # changed when the parse rules below change: earlier markers no longer count
        key = hashlib.sha256(f"{rules}\0{text}".encode()).hexdigest()
        return cache_dir() / "checked-templates" / key
    except (OSError, RuntimeError, FtwizError):  # no home folder, FTWIZ_CACHE_DIR a file: check every time
        return None


def _parser():
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    import jinja2.sandbox

    class GenerationBlock(jinja2.ext.Extension):
        """transformers' ``{% generation %}...{% endgeneration %}`` (marks assistant text for masks)."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    return jinja2, jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols])


def check_chat_template(chat_template: Any, model_dir: Path) -> None:
    """FtwizError naming the template's file and line when it does not parse as Jinja; nothing otherwise."""
    model_dir = Path(model_dir)
    source = model_dir / "chat_template.jinja"
    if not source.is_file():
        source = model_dir / "tokenizer_config.json"
    for name, text in _templates(chat_template):
        marker = _marker(text)
        if marker is not None and marker.is_file():
            continue
        jinja2, env = _parser()
        try:
            env.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            label = f" '{name}'" if name else ""
            where = (Location(file=source, line=exc.lineno) if source.suffix == ".jinja"
                     else Location(file=source, field="chat_template"))
            raise FtwizError(f"the chat template{label} does not parse as Jinja: {exc.message} (line {exc.lineno} "
                             "of the template); llama.cpp could not load a GGUF carrying it",
                             where=where, fix=f"fix line {exc.lineno} of the template in {source.name}, or restore "
                                              "the base model's template") from None
        if marker is not None:
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            except OSError:
                pass
