"""Named chat templates mean what LLaMA-Factory means by them; the template of record is resolved, saved
and read back as one text; thinking templates honour enable_thinking the same way with or without kwargs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.chat_templates import (
    NAMED_TEMPLATES,
    TEMPLATE_NAMES,
    TemplateOfRecord,
    render_chat,
    resolve_template,
    with_thinking_default,
    write_template_files,
)
from ftwiz.core.errors import FtwizError

SHARED_TOKENIZERS = Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers"
BOS, EOS = "<|begin_of_text|>", "<|eot_id|>"

# LLaMA-Factory's slots (facts of src/llamafactory/data/template.py): "B"/"E" stand for the BOS/EOS
# token, "{c}" for the content. fold = Llama2Template (system text prepended to the first user message).
LF = {
    "alpaca": dict(user=["### Instruction:\n{c}\n\n### Response:\n"], assistant=["{c}", "E", "\n\n"],
                   system=["{c}"], default=("Below is an instruction that describes a task. Write a response "
                                            "that appropriately completes the request.\n\n")),
    "chatml": dict(user=["<|im_start|>user\n{c}<|im_end|>\n<|im_start|>assistant\n"], assistant=["{c}<|im_end|>\n"],
                   system=["<|im_start|>system\n{c}<|im_end|>\n"]),
    "qwen": dict(user=["<|im_start|>user\n{c}<|im_end|>\n<|im_start|>assistant\n"], assistant=["{c}<|im_end|>\n"],
                 system=["<|im_start|>system\n{c}<|im_end|>\n"],
                 default="You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    "llama3": dict(user=["<|start_header_id|>user<|end_header_id|>\n\n{c}<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n"], assistant=["{c}<|eot_id|>"],
                   system=["<|start_header_id|>system<|end_header_id|>\n\n{c}<|eot_id|>"], prefix=["B"]),
    "llama2": dict(user=["B", "[INST] {c} [/INST]"], assistant=["{c}", "E"], system=["<<SYS>>\n{c}\n<</SYS>>\n\n"],
                   fold=True),
    "mistral": dict(user=["[INST] {c}[/INST]"], assistant=[" {c}", "E"], system=["{c}\n\n"], prefix=["B"], fold=True),
    "gemma": dict(user=["<start_of_turn>user\n{c}<end_of_turn>\n<start_of_turn>model\n"],
                  assistant=["{c}<end_of_turn>\n"], system=["{c}\n\n"], prefix=["B"], fold=True),
    "phi": dict(user=["<|user|>\n{c}<|end|>\n<|assistant|>\n"], assistant=["{c}<|end|>\n"],
                system=["<|system|>\n{c}<|end|>\n"]),
    "default": dict(user=["Human: {c}", "E", "\nAssistant:"], assistant=["{c}", "E", "\n"],
                    system=["System: {c}", "E", "\n"]),
    "empty": dict(user=["{c}"], assistant=["{c}"], system=["{c}"]),
    "vicuna": dict(user=["USER: {c} ASSISTANT:"], assistant=["{c}", "E"], system=["{c}"],
                   default=("A chat between a curious user and an artificial intelligence assistant. The "
                            "assistant gives helpful, detailed, and polite answers to the user's questions.")),
    "zephyr": dict(user=["<|user|>\n{c}", "E", "<|assistant|>\n"], assistant=["{c}", "E"],
                   system=["<|system|>\n{c}", "E"], default="You are Zephyr, a helpful assistant."),
}
CONVERSATIONS = {
    "one turn": [{"role": "user", "content": "Hi there"}],
    "one turn, system": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
    "two turns, answered": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                            {"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Red."}],
    "three turns, system": [{"role": "system", "content": "You answer in French."},
                            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Salut !"},
                            {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "De rien."},
                            {"role": "user", "content": "Bye"}],
}


def _slots(slots: list[str], content: str) -> str:
    return "".join({"B": BOS, "E": EOS}.get(s, s.replace("{c}", content)) for s in slots)


def llamafactory_text(name: str, messages: list[dict[str, str]]) -> str:
    """LLaMA-Factory's Template._encode / Llama2Template._encode, as text (the oracle)."""
    spec = LF[name]
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    turns = messages[1:] if system is not None else messages
    system = system or spec.get("default", "")
    out = []
    for i, message in enumerate(turns):
        if i == 0:
            out.append(_slots(spec.get("prefix", []), ""))
            if system and not spec.get("fold"):
                out.append(_slots(spec["system"], system))
        content = message["content"]
        if message["role"] == "user":
            if i == 0 and system and spec.get("fold"):
                content = _slots(spec["system"], system) + content
            out.append(_slots(spec["user"], content))
        else:
            out.append(_slots(spec["assistant"], content))
    return "".join(out)


@pytest.fixture(scope="module")
def llama_tok():
    from ftwiz.core.tiny import build_tokenizer

    return build_tokenizer("llama3", vocab_size=320)


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("name", sorted(LF))
def test_named_template_renders_what_llamafactory_trains_on(llama_tok, name: str, conversation: str) -> None:
    messages = CONVERSATIONS[conversation]
    prompt = messages[-1]["role"] == "user"
    rendered = llama_tok.apply_chat_template(messages, chat_template=NAMED_TEMPLATES[name], tokenize=False,
                                             add_generation_prompt=prompt)
    assert rendered == llamafactory_text(name, messages)


def test_every_supported_name_renders_and_unknown_names_are_refused_with_the_list(llama_tok) -> None:
    for name in TEMPLATE_NAMES:
        assert render_chat(NAMED_TEMPLATES[name], CONVERSATIONS["two turns, answered"], add_generation_prompt=False,
                           bos_token=BOS, eos_token=EOS).count("Red.") == 1
    with pytest.raises(FtwizError, match="unknown chat template 'qwen2'") as info:
        resolve_template(llama_tok, "qwen2")
    assert "alpaca" in (info.value.fix or "") and "qwen3" in (info.value.fix or "")


def test_recipe_validate_rejects_an_unknown_template_name(tmp_path: Path, capsys) -> None:
    from ftwiz.core.cli import main as cli_main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: demo\ntemplate: alpacca\n", encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) != 0
    err = capsys.readouterr()
    text = err.out + err.err
    assert "alpacca" in text and "alpaca" in text and "chatml" in text
    recipe.write_text("model_name_or_path: demo\ndataset: demo\ntemplate: llama3\nenable_thinking: false\n",
                      encoding="utf-8")
    assert cli_main(["recipe", "validate", str(recipe)]) == 0
    assert "'llama3'" in capsys.readouterr().out


def test_a_named_template_over_the_models_own_is_announced_naming_both(llama_tok, tmp_path: Path) -> None:
    heard: list[str] = []
    record = resolve_template(llama_tok, "alpaca", warn=heard.append)
    assert record.source == "named" and record.name == "alpaca" and record.template == NAMED_TEMPLATES["alpaca"]
    assert len(heard) == 1 and "'alpaca'" in heard[0] and "model's own" in heard[0]
    assert resolve_template(llama_tok, None, warn=heard.append).source == "model" and len(heard) == 1
    jinja = tmp_path / "mine.jinja"
    jinja.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}", encoding="utf-8")
    from_file = resolve_template(llama_tok, str(jinja))
    assert from_file.source == "file" and from_file.template == jinja.read_text()
    assert resolve_template(llama_tok, "{{ messages[0]['content'] }}").source == "inline"
    bare = llama_tok.__class__.from_pretrained(_saved(llama_tok, tmp_path / "bare"))
    bare.chat_template = None
    with pytest.raises(FtwizError, match="no chat template") as info:
        resolve_template(bare, None)
    assert "alpaca" in (info.value.fix or "")


def _saved(tokenizer, folder: Path) -> Path:
    tokenizer.save_pretrained(folder)
    return folder


def test_the_template_written_into_a_tokenizer_folder_is_what_transformers_loads(llama_tok, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    folder = _saved(llama_tok, tmp_path / "tok")
    write_template_files(folder, NAMED_TEMPLATES["alpaca"])
    loaded = AutoTokenizer.from_pretrained(folder)
    assert loaded.chat_template == NAMED_TEMPLATES["alpaca"]
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["chat_template"] == NAMED_TEMPLATES["alpaca"]  # older readers (gguf SpecialVocab) see it too


THINKING = [{"role": "user", "content": "2+3?"},
            {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n5"},
            {"role": "user", "content": "times 4?"}]


def test_qwen3_named_template_follows_enable_thinking() -> None:
    template = NAMED_TEMPLATES["qwen3"]
    on = render_chat(template, THINKING, add_generation_prompt=True, enable_thinking=True)
    off = render_chat(template, THINKING, add_generation_prompt=True, enable_thinking=False)
    assert "add them" in on and on.endswith("<|im_start|>assistant\n")
    assert "add them" not in off and off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # an answer without thoughts is learned with an empty block (LLaMA-Factory's ReasoningTemplate)
    plain = render_chat(template, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                        add_generation_prompt=False)
    assert plain.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\nyo<|im_end|>\n")


def test_the_recipes_enable_thinking_becomes_the_templates_default_and_kwargs_still_win() -> None:
    baked = with_thinking_default(NAMED_TEMPLATES["qwen3"], False)
    assert with_thinking_default(baked, False) == baked  # idempotent: resolving twice gives one text
    assert render_chat(baked, THINKING, add_generation_prompt=True) == render_chat(
        NAMED_TEMPLATES["qwen3"], THINKING, add_generation_prompt=True, enable_thinking=False)
    assert "add them" in render_chat(baked, THINKING, add_generation_prompt=True, enable_thinking=True)
    assert with_thinking_default(NAMED_TEMPLATES["chatml"], False) == NAMED_TEMPLATES["chatml"]
    record = TemplateOfRecord(baked, "named", "qwen3", False)
    assert TemplateOfRecord.from_card(record.card_fields()) == record


def test_real_qwen3_template_with_thinking_off_renders_as_with_the_kwarg() -> None:
    folder = SHARED_TOKENIZERS / "Qwen3-0.6B"
    if not folder.is_dir():
        pytest.skip(f"needs the shared Qwen3 tokenizer_config.json at {folder}")
    own = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]
    tokens = {"eos_token": "<|im_end|>"}
    baked = with_thinking_default(own, False)
    expected = render_chat(own, THINKING, add_generation_prompt=True, special_tokens=tokens, enable_thinking=False)
    assert render_chat(baked, THINKING, add_generation_prompt=True, special_tokens=tokens) == expected
    assert expected.endswith("<think>\n\n</think>\n\n") and "add them" not in expected


def test_the_vllm_folder_and_a_merged_model_carry_the_runs_training_template(tiny_qwen2: Path, tmp_path: Path) -> None:
    """A full fine-tune whose folder still says ChatML (saved before the template was recorded) is served
    by vLLM with the run's template of record."""
    from ftwiz.core.scale.vllm import export_for_vllm
    from transformers import AutoTokenizer

    run = tmp_path / "runs" / "ft"
    shutil.copytree(tiny_qwen2, run / "model")
    (run / "recipe.yaml").write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: demo\ntemplate: alpaca\n",
                                     encoding="utf-8")
    record = TemplateOfRecord(NAMED_TEMPLATES["alpaca"], "named", "alpaca")
    (run / "run_card.json").write_text(json.dumps(record.card_fields()), encoding="utf-8")
    out = export_for_vllm(run, tmp_path / "serve")
    assert AutoTokenizer.from_pretrained(out).chat_template == NAMED_TEMPLATES["alpaca"]
