"""Mustache/Handlebars' unescaped variable ``{{{raw-html}}}`` (three braces) is template code, not a misspelled
``{{placeholder}}``: ``ftwiz data check`` warned that it "is no placeholder" (the text between the outer two braces
read as ``{{raw-html}}``). Oracle: the Mustache spec's triple mustache tag, and the records as written."""

from __future__ import annotations

import json
from pathlib import Path

from ftwiz.core.cli import main as cli_main


def test_a_triple_mustache_in_the_data_or_system_is_not_said_but_a_placeholder_like_text_beside_it_is(
        tmp_path: Path, capsys) -> None:
    from ftwiz.core.data.near_placeholders import system_warnings

    data = tmp_path / "templates.jsonl"
    answers = ["<div>{{{raw-html}}}</div>", "{{{ page-body }}} {{#has-items}}x{{/has-items}}", "Hi {{first-name}}!"]
    data.write_text("".join(json.dumps({"instruction": f"template {i}?", "output": a}) + "\n"
                            for i, a in enumerate(answers)), encoding="utf-8")
    assert cli_main(["data", "check", str(data)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {data}, line 3: {{{{first-name}}}} is no placeholder" in out, out
    assert out.count("is no placeholder") == 1 and "raw-html" not in out and "page-body" not in out, out
    said = system_warnings("Render {{{bot-name}}} as HTML; you are {{bot name}}.")
    assert len(said) == 1 and said[0].startswith("the recipe's system: {{bot name}} is no placeholder"), said
