"""Which chat templates format tools: the check behind register's "tool calls are not supported" note.
Oracle: transformers' apply_chat_template with the same tool."""

from __future__ import annotations

from ftwiz.core.chat_templates import NAMED_TEMPLATES
from ftwiz.core.deploy.tool_support import PROBE_TOOL, renders_tools, tools_note
from ftwiz.core.tiny import build_tokenizer

TOOL_TEMPLATE = ("{%- if tools -%}{{- '<tools>' + (tools | tojson) + '</tools>\\n' -}}{%- endif -%}"
                 "{%- for m in messages -%}{{- m.role + ': ' + m.content + '\\n' -}}{%- endfor -%}"
                 "{%- if add_generation_prompt -%}{{- 'assistant: ' -}}{%- endif -%}")


def test_a_template_that_formats_tools_gets_the_note_unless_the_ollama_template_uses_them() -> None:
    tok = build_tokenizer("chatml", vocab_size=320)
    shown = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tools=[PROBE_TOOL], tokenize=False,
                                    add_generation_prompt=True, chat_template=TOOL_TEMPLATE)
    assert "ftwiz_probe_weather" in shown  # the oracle: the model's template does format the tool
    assert renders_tools(TOOL_TEMPLATE)
    note = tools_note(TOOL_TEMPLATE, "{{ .Prompt }}")
    assert note is not None and "ftwiz serve" in note and "not supported" in note
    assert tools_note(TOOL_TEMPLATE, "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}") is None


def test_templates_without_tool_support_get_no_note() -> None:
    for name in ("chatml", "llama3", "qwen3"):
        assert not renders_tools(NAMED_TEMPLATES[name]), name
        assert tools_note(NAMED_TEMPLATES[name], "{{ .Prompt }}") is None
    assert not renders_tools(None) and not renders_tools("{{ raise_exception('no') }}{{ tools }}")
