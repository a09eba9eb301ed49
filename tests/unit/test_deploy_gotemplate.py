"""The Go text/template renderer behaves like Go's on the constructs Ollama templates use."""

from __future__ import annotations

import pytest
from ftwiz.core.deploy.gotemplate import GoTemplateError, ollama_values, render_go_template


def test_trim_markers_remove_whitespace_only_on_their_side() -> None:
    assert render_go_template("a  {{- .X }}  b", {"X": 1}) == "a1  b"
    assert render_go_template("a  {{ .X -}}  \n b", {"X": 1}) == "a  1b"
    assert render_go_template("a\n{{/* note */}}\nb", {}) == "a\n\nb"
    assert render_go_template("a\n{{- /* note */ -}}\nb", {}) == "ab"


def test_if_else_if_else_uses_go_truthiness() -> None:
    tpl = '{{ if .A }}A{{ else if eq .B "x" "y" }}B{{ else }}C{{ end }}'
    assert render_go_template(tpl, {"A": "s", "B": ""}) == "A"
    assert render_go_template(tpl, {"A": "", "B": "y"}) == "B"
    assert render_go_template(tpl, {"A": [], "B": "z"}) == "C"
    assert render_go_template("{{ if 0 }}t{{ else }}f{{ end }}", {}) == "f"


def test_range_with_index_variables_else_and_root() -> None:
    tpl = "{{ range $i, $m := .Messages }}{{ $i }}:{{ $m.Role }}/{{ .Content }}/{{ $.System }};{{ else }}none{{ end }}"
    data = {"System": "S", "Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}]}
    assert render_go_template(tpl, data) == "0:user/hi/S;1:assistant/yo/S;"
    assert render_go_template(tpl, {"System": "", "Messages": []}) == "none"


def test_last_message_detection_with_slice_and_len() -> None:
    tpl = ("{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
           "{{ .Content }}{{ if $last }}!{{ else }},{{ end }}{{ end }}")
    data = {"Messages": [{"Content": "a"}, {"Content": "b"}, {"Content": "c"}]}
    assert render_go_template(tpl, data) == "a,b,c!"


def test_assignment_updates_the_outer_variable() -> None:
    tpl = '{{ $prev := "" }}{{ range .Xs }}{{ $prev }}>{{ . }} {{ $prev = . }}{{ end }}end={{ $prev }}'
    assert render_go_template(tpl, {"Xs": ["a", "b"]}) == ">a a>b end=b"


def test_and_or_short_circuit_and_return_operands() -> None:
    assert render_go_template("{{ and .A .B }}|{{ or .C .B }}", {"A": "x", "B": "y", "C": ""}) == "y|y"
    # 'and' stops at the first false operand, so the missing field is never evaluated
    assert render_go_template("{{ if and .A .Missing.Deep }}t{{ else }}f{{ end }}", {"A": ""}) == "f"


def test_string_literals_pipes_and_printf() -> None:
    assert render_go_template('{{ "a\\nb" }}', {}) == "a\nb"
    assert render_go_template('{{ .X | printf "%s!" }}', {"X": "hey"}) == "hey!"
    assert render_go_template("{{ index .Xs 1 }}", {"Xs": ["a", "b"]}) == "b"


@pytest.mark.parametrize("tpl", ["{{ template \"x\" }}", "{{ if .A }}open", "{{ nosuch .A }}", "{{ .Missing }}"])
def test_unsupported_or_broken_templates_raise(tpl: str) -> None:
    with pytest.raises(GoTemplateError):
        render_go_template(tpl, {"A": 1})


def test_ollama_values_prepend_modelfile_system_and_collate() -> None:
    values = ollama_values([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], system="S")
    assert values["System"] == "S"
    assert [(m["Role"], m["Content"]) for m in values["Messages"]] == [("system", "S"), ("user", "a\n\nb")]
    # a system message in the request wins over the Modelfile SYSTEM
    values = ollama_values([{"role": "system", "content": "mine"}, {"role": "user", "content": "a"}], system="S")
    assert values["System"] == "mine"


def test_ollama_values_think_flag_as_ollama_sets_it() -> None:
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "thinking": "t"}]
    capable = ollama_values(msgs, thinking_capable=True)  # no think in the request: Ollama turns it on
    assert (capable["Think"], capable["IsThinkSet"]) == (True, True)
    assert capable["Messages"][1]["Thinking"] == "t"
    plain = ollama_values(msgs)
    assert (plain["Think"], plain["IsThinkSet"]) == (False, False)
    assert ollama_values(msgs, think=False, thinking_capable=True)["Think"] is False
    with pytest.raises(GoTemplateError, match="think"):  # Ollama answers 400 for such a model
        ollama_values(msgs, think=True)
    tpl = '{{ $n := -1 }}{{ range $i, $m := .Messages }}{{ if eq $m.Role "user" }}{{ $n = $i }}{{ end }}{{ end }}{{ $n }}'
    assert render_go_template(tpl, plain) == "0"  # assignment inside range reaches the outer variable (Go 1.11+)


def test_missing_top_level_value_is_nil_but_a_missing_message_field_is_an_error() -> None:
    values = ollama_values([{"role": "user", "content": "a"}])
    assert render_go_template("{{ if .Prompt }}p{{ else }}none{{ end }}|{{ .Prompt }}", values) == "none|<no value>"
    with pytest.raises(GoTemplateError, match="Nope"):
        render_go_template("{{ range .Messages }}{{ .Nope }}{{ end }}", values)
