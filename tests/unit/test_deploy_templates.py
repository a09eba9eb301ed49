"""The Ollama TEMPLATE ftwiz writes renders exactly what the model's own chat template renders.

Compared with ``tokenizer.apply_chat_template`` for 1-, 2- and 3-turn conversations with and without a
system prompt, on the tiny ChatML and Llama-3 tokenizers, the real Qwen2 and Phi-3 tokenizers, and
Gemma / Mistral style templates; plus the derived fallback and the refusal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.deploy.templates import (
    detect_family,
    ollama_prompt,
    ollama_template,
    probe_conversations,
)
from ftwiz.core.errors import FtwizError

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = messages[0]['content'] + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}"
    "{% endif %}{% for message in loop_messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if"
    " loop.first else '') }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content']"
    " + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
ALPACA_LIKE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + '\n\n' }}{% elif m['role'] == 'user' %}"
    "{{ '### Instruction:\n' + m['content'] + '\n\n' }}{% else %}{{ '### Response:\n' + m['content'] + eos_token"
    " + '\n\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
)


def _tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _assert_faithful(tok, chat_template: str | None = None, *, runtime_adds_bos: bool = False,
                     expect_family: str | None = None):
    template_text = chat_template or tok.chat_template
    result = ollama_template(template_text, bos_token=tok.bos_token, eos_token=tok.eos_token,
                             runtime_adds_bos=runtime_adds_bos)
    if expect_family:
        assert result.family == expect_family
    checked = 0
    for messages in probe_conversations():
        if messages[0]["role"] == "system" and not result.system_supported:
            continue
        expected = tok.apply_chat_template(messages, chat_template=template_text, tokenize=False,
                                           add_generation_prompt=True)
        if runtime_adds_bos and tok.bos_token and expected.startswith(tok.bos_token):
            expected = expected[len(tok.bos_token):]
        assert ollama_prompt(result.template, messages) == expected, messages
        checked += 1
    assert checked >= 3
    return result


def test_tiny_chatml(tiny_qwen2: Path) -> None:
    result = _assert_faithful(_tokenizer(tiny_qwen2), expect_family="chatml")
    assert "<|im_end|>" in result.stop_candidates
    assert result.system_supported and not result.derived


@pytest.mark.parametrize("runtime_adds_bos", [True, False])
def test_tiny_llama3_bos_written_once(tiny_llama: Path, runtime_adds_bos: bool) -> None:
    result = _assert_faithful(_tokenizer(tiny_llama), runtime_adds_bos=runtime_adds_bos, expect_family="llama3")
    # BOS must come from exactly one place: the runtime's token or the template's text, never both
    assert result.template.startswith("<|begin_of_text|>") is (not runtime_adds_bos)
    assert result.stop_candidates[0] == "<|eot_id|>"


def test_real_qwen2_default_system_prompt(shared_dir: Path) -> None:
    tok = _tokenizer(shared_dir / "tokenizers" / "Qwen2-1.5B-Instruct-Boundless")
    result = _assert_faithful(tok, expect_family="chatml")
    assert result.default_system == "You are a helpful assistant."
    # a conversation without a system prompt still gets the model's built-in one, as in training
    text = ollama_prompt(result.template, [{"role": "user", "content": "hi"}])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")


def test_real_phi3(shared_dir: Path) -> None:
    tok = _tokenizer(shared_dir / "tokenizers" / "Phi-3-mini-4k-instruct")
    result = _assert_faithful(tok, expect_family="phi3")
    assert "<|end|>" in result.stop_candidates


def test_gemma_folds_system_into_first_user_turn(tiny_qwen2: Path) -> None:
    result = _assert_faithful(_tokenizer(tiny_qwen2), GEMMA, expect_family="gemma")
    text = ollama_prompt(result.template, [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "hi"}])
    assert text == "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n"
    assert "<end_of_turn>" in result.stop_candidates


def test_mistral_without_system_support(shared_dir: Path) -> None:
    tok = _tokenizer(shared_dir / "tokenizers" / "Phi-3-mini-4k-instruct")  # any tokenizer with <s> and an EOS
    result = _assert_faithful(tok, MISTRAL, runtime_adds_bos=True, expect_family="mistral")
    assert not result.system_supported  # the template raises on a system message; ftwiz will refuse SYSTEM
    assert "[INST]" in result.stop_candidates


def test_unknown_family_is_derived_from_the_jinja_template(tiny_qwen2: Path) -> None:
    assert detect_family(ALPACA_LIKE) is None
    result = _assert_faithful(_tokenizer(tiny_qwen2), ALPACA_LIKE)
    assert result.derived and result.family == "derived"
    assert "<|im_end|>" in result.stop_candidates  # the EOS the template writes after each answer


@pytest.mark.parametrize("template", [
    "{% for m in messages %}{{ m['content'] | upper }}\n{% endfor %}",                    # transforms content
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'][::-1] }}\n{% endfor %}",      # reverses it
    "{% for m in messages %}{{ loop.index }}. {{ m['content'] }}\n{% endfor %}",             # numbers turns
])
def test_unfaithful_templates_are_refused_not_guessed(template: str) -> None:
    with pytest.raises(FtwizError, match="cannot write an Ollama TEMPLATE"):
        ollama_template(template, eos_token="</s>")


def test_missing_or_broken_template_names_the_field() -> None:
    with pytest.raises(FtwizError) as info:
        ollama_template(None)
    assert info.value.where == "tokenizer.chat_template"
    with pytest.raises(FtwizError, match="does not parse"):
        ollama_template("{% for m in messages %}")


def test_generation_tags_for_assistant_masks_are_understood(tiny_qwen2: Path) -> None:
    # training templates often wrap assistant turns in {% generation %} so HF can build loss masks
    masked = (
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'assistant' -%}{{- '<|im_start|>assistant\\n' -}}{% generation %}"
        "{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}{{- '\\n' -}}"
        "{%- else -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}{%- endif -%}"
        "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )
    result = _assert_faithful(_tokenizer(tiny_qwen2), masked, expect_family="chatml")
    assert result.system_supported


LLAMA31_STYLE = (
    "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def test_llama31_style_preamble_is_kept_with_and_without_system(tiny_llama: Path) -> None:
    # the known Llama-3 layout misses the date preamble; the derived layout must win over a system-less fallback
    result = _assert_faithful(_tokenizer(tiny_llama), LLAMA31_STYLE, runtime_adds_bos=True)
    assert result.derived and result.system_supported and result.default_system == ""
    no_system = ollama_prompt(result.template, [{"role": "user", "content": "hi"}])
    assert no_system.startswith("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date")
