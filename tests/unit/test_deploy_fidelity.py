"""Ollama prompts for real tokenizers are exactly the training prompts: text and tokens, BOS included.

Oracle: transformers' ``apply_chat_template`` with each model's own template (what training renders) against
Ollama's prompt building modelled by ftwiz's Go-template interpreter (``.System`` collected, ``.Messages``
collated, BOS added by the runtime when the vocabulary says so), for 1-3 turn conversations with and without
a system prompt; then the token sequences of both, from the HF tokenizer, must agree with exactly one BOS
wherever training had one. Real tokenizers come from ../shared/tokenizers (skipped with a reason when absent).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ftwiz.core.deploy.probes import as_ollama_sees, is_thinking_capable, thinking_probes
from ftwiz.core.deploy.templates import ollama_prompt, ollama_template, probe_conversations
from ftwiz.core.errors import FtwizError
from real_tokenizers import real_tokenizer, require_shared


@pytest.fixture(scope="module")
def tokenizers_dir() -> Path:
    return require_shared()


def _load(_folder: Path, name: str):
    """The HF tokenizer a user of this model trains with, its chat template set."""
    return real_tokenizer(name)


def _adds_bos(tok) -> bool:
    """Whether the runtime adds BOS: the GGUF's add_bos_token follows the HF tokenizer (core/export/vocab.py)."""
    ids = tok("hi").input_ids
    return tok.bos_token_id is not None and bool(ids) and ids[0] == tok.bos_token_id


def _leading_bos(ids: list[int], bos: int | None) -> int:
    n = 0
    while bos is not None and n < len(ids) and ids[n] == bos:
        n += 1
    return n


def _check(tok, *, enable_thinking: bool | None = None, conversations=None) -> object:
    adds_bos = _adds_bos(tok)
    result = ollama_template(tok.chat_template, bos_token=tok.bos_token, eos_token=tok.eos_token,
                             runtime_adds_bos=adds_bos, enable_thinking=enable_thinking)
    capable = is_thinking_capable(result.template)
    kwargs = {} if enable_thinking is None and not capable else {"enable_thinking": True if capable else enable_thinking}
    checked = 0
    for messages in conversations or probe_conversations():
        if messages[0]["role"] == "system" and not result.system_supported:
            continue
        trained = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
        served = ollama_prompt(result.template, as_ollama_sees(messages, thinking_capable=capable))
        expected = trained[len(tok.bos_token):] if adds_bos and tok.bos_token and trained.startswith(tok.bos_token) \
            else trained
        assert served == expected, messages
        # tokens: training tokenizes the rendering as is; serving = runtime BOS + the TEMPLATE's text
        train_ids = tok(trained, add_special_tokens=False).input_ids
        serve_ids = ([tok.bos_token_id] if adds_bos else []) + tok(served, add_special_tokens=False).input_ids
        assert _leading_bos(serve_ids, tok.bos_token_id) <= 1, "two BOS tokens"
        if _leading_bos(train_ids, tok.bos_token_id) == 1:
            assert serve_ids == train_ids
        else:  # the runtime may add a BOS the rendering lacks; nothing else may differ
            assert serve_ids[_leading_bos(serve_ids, tok.bos_token_id):] == train_ids
        checked += 1
    assert checked >= 3
    return result


@pytest.mark.parametrize("runtime_adds_bos", [True, False])
def test_mistral_v03_one_bos_and_system_before_the_last_user_turn(tokenizers_dir: Path, runtime_adds_bos: bool) -> None:
    tok = _load(tokenizers_dir, "Mistral-7B-Instruct-v0.3")
    assert _adds_bos(tok)
    if not runtime_adds_bos:  # a GGUF that does not ask for BOS: the TEMPLATE writes it as text, once
        tok = copy.deepcopy(tok)  # the cached tokenizer's Rust pipeline stays as it is
        tok.add_bos_token = False
        tok.update_post_processor()
    result = _check(tok)
    assert result.system_supported
    assert result.template.startswith("<s>") is (not runtime_adds_bos)
    three_turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    served = ollama_prompt(result.template, three_turns)
    assert served.endswith("[INST]Be brief.\n\nBye[/INST]") and served.count("Be brief.") == 1
    # the Modelfile SYSTEM goes to the same place as a system message in the request
    assert ollama_prompt(result.template, three_turns[1:], system="Be brief.") == served
    assert "</s>" in result.stop_candidates


def test_mistral_v03_consecutive_turns_of_one_role_merge_as_its_template_merges_them(tokenizers_dir: Path) -> None:
    """v0.3's Jinja joins consecutive messages of one role with a blank line into one [INST] (or one answer);
    Ollama collates them the same way before the TEMPLATE runs (template.go collate: "\\n\\n", tool
    results apart), so the Modelfile prompt is the training prompt without any special TEMPLATE code."""
    tok = _load(tokenizers_dir, "Mistral-7B-Instruct-v0.3")
    conversations = [
        [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Name a fruit."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a fruit."},
         {"role": "user", "content": "A red one."}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
         {"role": "assistant", "content": "How can I help?"}, {"role": "user", "content": "Bye"}],
    ]
    _check(tok, conversations=conversations)
    merged = tok.apply_chat_template(conversations[1], tokenize=False, add_generation_prompt=True)
    assert merged.endswith("[INST]Be brief.\n\nName a fruit.\n\nA red one.[/INST]")  # one turn, as trained


def test_qwen2_chatml_with_its_default_system_prompt(tokenizers_dir: Path) -> None:
    result = _check(_load(tokenizers_dir, "Qwen2-1.5B-Instruct-Boundless"))
    assert result.family == "chatml" and result.default_system == "You are a helpful assistant."
    assert "<|im_end|>" in result.stop_candidates


def test_phi3_and_tinyllama(tokenizers_dir: Path) -> None:
    phi3 = _check(_load(tokenizers_dir, "Phi-3-mini-4k-instruct"))
    assert "<|end|>" in phi3.stop_candidates
    tiny = _check(_load(tokenizers_dir, "TinyLlama-1.1B-Chat-v1.0"))
    assert "</s>" in tiny.stop_candidates and not tiny.template.startswith("<s>")
    # the Modelfile header names the family: TinyLlama's is Zephyr's layout (EOS ends turns), not Phi-3's
    assert phi3.family == "phi3" and tiny.family == "zephyr"
    assert "<|end|>" not in tiny.stop_candidates  # Phi-3's end token is not even in TinyLlama's vocabulary


@pytest.mark.parametrize("enable_thinking", [None, True])
def test_qwen3_thinking_on_earlier_think_blocks_dropped_as_in_training(tokenizers_dir: Path,
                                                                      enable_thinking: bool | None) -> None:
    tok = _load(tokenizers_dir, "Qwen3-0.6B")
    result = _check(tok, enable_thinking=enable_thinking)
    assert is_thinking_capable(result.template)  # Ollama grants thinking and defaults think to true
    _check(tok, enable_thinking=enable_thinking, conversations=thinking_probes())
    # a request with think=false gets exactly what training renders with enable_thinking=False
    for messages in probe_conversations() + thinking_probes():
        trained = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        served = ollama_prompt(result.template, as_ollama_sees(messages, thinking_capable=True), think=False)
        assert served == trained
        assert "<think>" not in served.rsplit("<|im_start|>assistant\n", 1)[0]  # earlier reasoning never shown


def test_qwen3_thinking_off_recipe_always_renders_the_closed_think_block(tokenizers_dir: Path) -> None:
    tok = _load(tokenizers_dir, "Qwen3-0.6B")
    result = ollama_template(tok.chat_template, eos_token=tok.eos_token, enable_thinking=False)
    assert not is_thinking_capable(result.template)  # Ollama would otherwise default think to true
    for messages in probe_conversations():
        trained = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        assert ollama_prompt(result.template, messages) == trained
        assert trained.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_template_that_writes_todays_date_is_refused_with_the_reason() -> None:
    dated = ("{{ '<|im_start|>system\\nToday is ' + strftime_now('%d %b %Y') + '<|im_end|>\\n' }}"
             "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
             "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    with pytest.raises(FtwizError, match=r"today's date .*%d %b %Y") as info:
        ollama_template(dated, eos_token="<|im_end|>")
    assert "ftwiz serve" in info.value.fix


def test_qwen3_template_whose_default_is_thinking_off(tokenizers_dir: Path) -> None:
    """A GGUF whose template defaults enable_thinking to false (how a run with enable_thinking: false ships
    it): with no flag passed, the TEMPLATE renders the thinking-off prompt and does not ask Ollama for thinking."""
    tok = _load(tokenizers_dir, "Qwen3-0.6B")
    tok.chat_template = ("{%- if enable_thinking is not defined -%}{%- set enable_thinking = false -%}{%- endif -%}"
                         + tok.chat_template)
    result = _check(tok)
    assert not is_thinking_capable(result.template)
    assert ollama_prompt(result.template, [{"role": "user", "content": "Hi"}]).endswith("<think>\n\n</think>\n\n")


def test_no_bos_is_invented_for_a_vocabulary_without_one(tokenizers_dir: Path) -> None:
    """Mistral v0.3's template writes ``{{ bos_token }}``; on a tokenizer without a BOS there is nothing to
    write, and the TEMPLATE must not make one up (it renders exactly what training rendered: no BOS)."""
    template = (tokenizers_dir / "Mistral-7B-Instruct-v0.3" / "chat_template.jinja").read_text(encoding="utf-8")
    for runtime_adds_bos in (True, False):
        result = ollama_template(template, bos_token=None, eos_token="</s>", runtime_adds_bos=runtime_adds_bos)
        assert "<s>" not in result.template
        assert ollama_prompt(result.template, [{"role": "user", "content": "Hi"}]) == "[INST]Hi[/INST]"


def test_qwen3_thinking_default_holds_on_an_ollama_that_leaves_think_unset(tokenizers_dir: Path) -> None:
    """Ollama before 0.12 passes an unset think flag as Think=false, IsThinkSet=false: still thinking on."""
    from ftwiz.core.deploy.gotemplate import ollama_values, render_go_template

    tok = _load(tokenizers_dir, "Qwen3-0.6B")
    result = ollama_template(tok.chat_template, eos_token=tok.eos_token)
    chat = [{"role": "user", "content": "Hi"}]
    values = ollama_values(chat)  # as an older Ollama builds them: think not set
    assert (values["Think"], values["IsThinkSet"]) == (False, False)
    trained = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert render_go_template(result.template, values) == trained
