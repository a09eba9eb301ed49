"""Named chat templates: LLaMA-Factory's template names, written as Jinja chat templates.

Users port recipes from LLaMA-Factory with ``template: qwen`` or ``template: alpaca``; each name here means
what it means there (``src/llamafactory/data/template.py``: the user/assistant/system slots, the prefix,
the default system prompt, whether the system text is folded into the first user turn). ftwiz renders
training data with transformers' Jinja engine and ships the very same text in the GGUF, so each name is
written as a Jinja template (our own text, built from the slot facts below).

One deliberate difference in form, none in output: LLaMA-Factory puts the assistant header
(``<|im_start|>assistant\\n``) at the end of the *user* slot. Here it is the generation prompt, as in
Hugging Face templates, so a conversation renders to the same text while ``add_generation_prompt``
keeps its usual meaning (which Ollama's TEMPLATE and llama.cpp rely on).

``qwen3`` is LLaMA-Factory's ReasoningTemplate: an assistant turn without a ``<think>`` block gets an
empty one (``<think>\\n\\n</think>\\n\\n``); with ``enable_thinking`` false every thought is removed and
the empty block belongs to the prompt (it is never learned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SystemPlace = Literal["first", "fold", "none"]

# Slot text uses {content}, {bos} and {eos}: the message text and the tokenizer's BOS/EOS token text.
EMPTY_THOUGHT = "<think>\n\n</think>\n\n"


@dataclass(frozen=True)
class NamedSpec:
    """One LLaMA-Factory template, as slot strings.

    ``user`` is the user turn without the assistant header; ``header`` is the assistant header (the
    generation prompt); ``assistant`` the answer slot. ``system_place`` is "first" (a system block before
    the first turn), "fold" (LLaMA-Factory's Llama2Template: the formatted system text is prepended to the
    first user message), or "none".
    """

    user: str
    header: str
    assistant: str
    system: str = "{content}"
    prefix: str = ""
    default_system: str = ""
    system_place: SystemPlace = "first"
    thinking: bool = False
    description: str = ""


_CHATML = {"user": "<|im_start|>user\n{content}<|im_end|>\n", "header": "<|im_start|>assistant\n",
           "assistant": "{content}<|im_end|>\n", "system": "<|im_start|>system\n{content}<|im_end|>\n"}
_GEMMA = {"user": "<start_of_turn>user\n{content}<end_of_turn>\n", "header": "<start_of_turn>model\n",
          "assistant": "{content}<end_of_turn>\n", "system": "{content}\n\n", "prefix": "{bos}",
          "system_place": "fold"}
_VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                  "The assistant gives helpful, detailed, and polite answers to the user's questions.")

NAMED_SPECS: dict[str, NamedSpec] = {
    "alpaca": NamedSpec(
        user="### Instruction:\n{content}\n\n", header="### Response:\n", assistant="{content}{eos}\n\n",
        default_system=("Below is an instruction that describes a task. "
                        "Write a response that appropriately completes the request.\n\n"),
        description="### Instruction / ### Response blocks, Stanford Alpaca's default system text"),
    "chatml": NamedSpec(**_CHATML, description="ChatML (<|im_start|>/<|im_end|>), no default system"),
    "default": NamedSpec(
        user="Human: {content}{eos}\n", header="Assistant:", assistant="{content}{eos}\n",
        system="System: {content}{eos}\n", description="Human: / Assistant: turns ended by EOS"),
    "deepseek": NamedSpec(
        user="User: {content}\n\n", header="Assistant:", assistant="{content}{eos}", system="{content}\n\n",
        prefix="{bos}", description="DeepSeek-LLM chat: User: / Assistant:"),
    "empty": NamedSpec(user="{content}", header="", assistant="{content}",
                       description="the texts concatenated, nothing added"),
    "gemma": NamedSpec(**_GEMMA, description="Gemma turns; system text folded into the first user turn"),
    "gemma2": NamedSpec(**_GEMMA, description="as gemma"),
    "gemma3": NamedSpec(**_GEMMA, description="as gemma"),
    "llama2": NamedSpec(
        user="{bos}[INST] {content} [/INST]", header="", assistant="{content}{eos}",
        system="<<SYS>>\n{content}\n<</SYS>>\n\n", system_place="fold",
        description="Llama-2 chat: [INST] ... [/INST], <<SYS>> folded into the first turn"),
    "llama3": NamedSpec(
        user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>",
        header="<|start_header_id|>assistant<|end_header_id|>\n\n", assistant="{content}<|eot_id|>",
        system="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>", prefix="{bos}",
        description="Llama-3 headers ended by <|eot_id|>"),
    "mistral": NamedSpec(
        user="[INST] {content}[/INST]", header="", assistant=" {content}{eos}", system="{content}\n\n",
        prefix="{bos}", system_place="fold",
        description="Mistral v3: [INST] ...[/INST], system text folded into the first turn"),
    "phi": NamedSpec(
        user="<|user|>\n{content}<|end|>\n", header="<|assistant|>\n", assistant="{content}<|end|>\n",
        system="<|system|>\n{content}<|end|>\n", description="Phi-3: <|user|> / <|assistant|> ended by <|end|>"),
    "qwen": NamedSpec(**_CHATML, default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                      description="ChatML with Qwen's default system text"),
    "qwen3": NamedSpec(**_CHATML, thinking=True,
                       description="ChatML with <think> blocks (enable_thinking), no default system"),
    "qwen3_nothink": NamedSpec(**_CHATML, description="ChatML, no thinking blocks"),
    "smollm": NamedSpec(**_CHATML, description="ChatML"),
    "vicuna": NamedSpec(user="USER: {content} ", header="ASSISTANT:", assistant="{content}{eos}",
                        default_system=_VICUNA_SYSTEM, description="USER: / ASSISTANT: with Vicuna's system text"),
    "yi": NamedSpec(**_CHATML, description="ChatML"),
    "zephyr": NamedSpec(
        user="<|user|>\n{content}{eos}", header="<|assistant|>\n", assistant="{content}{eos}",
        system="<|system|>\n{content}{eos}", default_system="You are Zephyr, a helpful assistant.",
        description="Zephyr: <|user|> / <|assistant|> ended by EOS"),
}

TEMPLATE_NAMES: tuple[str, ...] = tuple(sorted(NAMED_SPECS))


def _literal(text: str) -> str:
    """A single-quoted Jinja string literal (backslash, quote and newline escaped)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def _expr(slot: str, content: str = "content") -> str:
    """A Jinja expression for a slot: literals joined with ``content``, ``bos_token`` and ``eos_token``."""
    parts: list[str] = []
    rest = slot
    names = {"{content}": content, "{bos}": "bos_token", "{eos}": "eos_token"}
    while rest:
        hits = [(rest.find(k), k) for k in names if rest.find(k) >= 0]
        if not hits:
            parts.append(_literal(rest))
            break
        at, key = min(hits)
        if at:
            parts.append(_literal(rest[:at]))
        parts.append(names[key])
        rest = rest[at + len(key):]
    return " + ".join(parts) if parts else "''"


def _emit(slot: str, content: str = "content") -> str:
    return "" if not slot else "{{- " + _expr(slot, content) + " -}}"


def _thought_handling() -> str:
    """qwen3: thinking off drops every thought (the header then carries the empty block); thinking on
    gives an assistant turn without a thought an empty block, learned as part of the answer."""
    return (
        "{%- if enable_thinking is defined and enable_thinking is false -%}"
        "{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
        "{%- endif -%}"
        "{%- elif '<think>' not in content and '</think>' not in content -%}"
        f"{{%- set content = {_literal(EMPTY_THOUGHT)} + content -%}}"
        "{%- endif -%}"
    )


def build_jinja(spec: NamedSpec) -> str:
    """The Jinja chat template for ``spec`` (rendered by transformers, llama.cpp and ftwiz alike)."""
    out = [_emit(spec.prefix)]
    out.append(f"{{%- set system_message = {_literal(spec.default_system)} -%}}")
    out.append("{%- if messages and messages[0]['role'] == 'system' -%}"
               "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}"
               "{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}")
    if spec.system_place == "first":
        out.append("{%- if system_message -%}" + _emit(spec.system, "system_message") + "{%- endif -%}")
    header = spec.header
    thinking_header = ""
    if spec.thinking:
        thinking_header = ("{%- if enable_thinking is defined and enable_thinking is false -%}"
                           + _emit(EMPTY_THOUGHT) + "{%- endif -%}")
    out.append("{%- for message in loop_messages -%}")
    out.append("{%- set content = message['content'] -%}")
    out.append("{%- if message['role'] == 'user' -%}")
    if spec.system_place == "fold":
        out.append("{%- if loop.first and system_message -%}"
                   f"{{%- set content = {_expr(spec.system, 'system_message')} + content -%}}{{%- endif -%}}")
    out.append(_emit(spec.user))
    out.append("{%- elif message['role'] == 'assistant' -%}")
    if spec.thinking:
        out.append(_thought_handling())
    out.append(_emit(header) + thinking_header + _emit(spec.assistant))
    out.append("{%- else -%}{{- raise_exception('only a first system message, then user and assistant turns, "
               "are supported by this template') -}}{%- endif -%}")
    out.append("{%- endfor -%}")
    out.append("{%- if add_generation_prompt -%}" + _emit(header) + thinking_header + "{%- endif -%}")
    return "".join(out)


NAMED_TEMPLATES: dict[str, str] = {name: build_jinja(spec) for name, spec in NAMED_SPECS.items()}
