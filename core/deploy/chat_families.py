"""The chat families ftwiz knows, the turn layout they share, and the Ollama Go TEMPLATE written from it.

Why: a turn layout (:class:`TurnParts`) is the one description both the well-known families and the
derived fallback produce, so one emitter turns either into a TEMPLATE; keeping the family knowledge
(markers, layouts, end-of-turn strings) together makes adding a family a change in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

FAMILIES = ("chatml", "llama3", "mistral", "gemma", "phi3", "zephyr")


def detect_family(chat_template: str) -> str | None:
    """The template family from its turn markers, or None when ftwiz does not know it."""
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    if "<start_of_turn>" in chat_template:
        return "gemma"
    if "<|user|>" in chat_template and "<|assistant|>" in chat_template:
        # Phi-3 ends turns with <|end|>; Zephyr (TinyLlama-Chat) uses the same role tags but ends them
        # with the EOS token, so it is a family of its own (its layout is derived, then checked)
        return "phi3" if "<|end|>" in chat_template else "zephyr"
    if "[INST]" in chat_template:
        return "mistral"
    return None


@dataclass(frozen=True)
class TurnParts:
    """The text around each message's content; enough to write a Go template for the chat.

    ``user_pre_after_system`` covers templates that fold the system prompt into the first user turn
    (Gemma, Mistral): the user prefix is then already written by the system block.
    """

    sys_pre: str
    sys_post: str
    user_pre: str
    user_post: str
    asst_pre: str
    asst_post: str
    gen: str
    user_pre_after_system: str | None = None
    head: str = ""                      # emitted once at the very start (BOS text when the runtime does not add it)
    default_system: str | None = None   # the system prompt the Jinja template inserts when none is given
    # True when the system text goes inside the *last* user turn, right after its user_pre (Mistral v3)
    system_last_user: bool = False
    # Hybrid thinking (Qwen3): what the template adds after ``gen`` when thinking is off, e.g.
    # "<think>\n\n</think>\n\n". Set, the TEMPLATE shows .Thinking so Ollama grants the thinking capability
    # (and defaults ``think`` to true), and writes this text when a request sends ``think: false``.
    no_think_gen: str = ""
    # True when an empty system message renders differently from none (ChatML, Phi-3, zephyr write an empty
    # system turn): Ollama gives .System "" for both, so the TEMPLATE looks for a system message instead.
    system_if_present: bool = False


KNOWN_PARTS: dict[str, TurnParts] = {
    "chatml": TurnParts(
        sys_pre="<|im_start|>system\n", sys_post="<|im_end|>\n",
        user_pre="<|im_start|>user\n", user_post="<|im_end|>\n",
        asst_pre="<|im_start|>assistant\n", asst_post="<|im_end|>\n", gen="<|im_start|>assistant\n"),
    "llama3": TurnParts(
        sys_pre="<|start_header_id|>system<|end_header_id|>\n\n", sys_post="<|eot_id|>",
        user_pre="<|start_header_id|>user<|end_header_id|>\n\n", user_post="<|eot_id|>",
        asst_pre="<|start_header_id|>assistant<|end_header_id|>\n\n", asst_post="<|eot_id|>",
        gen="<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "mistral": TurnParts(
        sys_pre="[INST] ", sys_post="\n\n", user_pre="[INST] ", user_post=" [/INST]",
        asst_pre="", asst_post="</s>", gen="", user_pre_after_system=""),
    "gemma": TurnParts(
        sys_pre="<start_of_turn>user\n", sys_post="\n\n",
        user_pre="<start_of_turn>user\n", user_post="<end_of_turn>\n",
        asst_pre="<start_of_turn>model\n", asst_post="<end_of_turn>\n", gen="<start_of_turn>model\n",
        user_pre_after_system=""),
    "phi3": TurnParts(
        sys_pre="<|system|>\n", sys_post="<|end|>\n", user_pre="<|user|>\n", user_post="<|end|>\n",
        asst_pre="<|assistant|>\n", asst_post="<|end|>\n", gen="<|assistant|>\n"),
}

# End-of-turn markers each family may emit; the Modelfile keeps those that are control tokens in the GGUF.
FAMILY_STOPS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    "llama3": ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"),
    "mistral": ("</s>", "[INST]", "[/INST]"),
    "gemma": ("<end_of_turn>", "<start_of_turn>", "<eos>"),
    "phi3": ("<|end|>", "<|user|>", "<|assistant|>", "<|endoftext|>"),
    "zephyr": ("</s>", "<|user|>", "<|assistant|>"),
}


def _lit(text: str) -> str:
    """Literal text for a Go template; quoted in an action when it would clash with the delimiters."""
    if "{{" in text or "}}" in text:
        return "{{ " + json.dumps(text, ensure_ascii=False) + " }}"
    return text


def go_template(parts: TurnParts, *, with_system: bool = True) -> str:
    """Assemble an Ollama TEMPLATE from a turn layout.

    Every line ends with an action and every line after the first starts with ``{{-``, so the only
    whitespace Go trims is the layout's own newlines, never the model's (``<|im_end|>\\n`` keeps its
    newline). The last assistant message is left open, as Ollama does, so a client can prefill it.
    ``$lastUser`` (the index of the last user message) places a last-turn system prompt and decides which
    answers keep their reasoning (only those after the last user message, as Qwen3's template does).
    """
    track_prev = parts.user_pre_after_system is not None and parts.user_pre_after_system != parts.user_pre
    last_user_system = with_system and parts.system_last_user
    lines: list[str] = []
    present = ""  # the system test: a non-empty .System, or (system_if_present) any system message
    if with_system and parts.system_if_present:  # Ollama keeps system messages in .Messages, even empty ones
        lines.append('{{ $system := false }}{{ range .Messages }}{{ if eq .Role "system" }}{{ $system = true }}'
                     "{{ end }}{{ end }}")
        present = "$system"
    if with_system and not parts.system_last_user:
        block = _lit(parts.sys_pre) + "{{ .System }}" + _lit(parts.sys_post)
        line = "{{ if " + (present or ".System") + " }}" + block
        if parts.default_system is not None:
            line += "{{ else }}" + _lit(parts.sys_pre + parts.default_system + parts.sys_post)
        lines.append(line + "{{ end }}")
    if last_user_system or parts.no_think_gen:
        lines.append("{{ $lastUser := -1 }}")
        lines.append('{{ range $j, $m := .Messages }}{{ if eq $m.Role "user" }}{{ $lastUser = $j }}{{ end }}{{ end }}')
    if track_prev:
        lines.append('{{ $prev := "" }}')
    lines.append("{{ range $i, $_ := .Messages }}")
    lines.append("{{ $last := eq (len (slice $.Messages $i)) 1 }}")
    if track_prev:
        user_pre = ('{{ if eq $prev "system" }}' + _lit(parts.user_pre_after_system or "") + "{{ else }}"
                    + _lit(parts.user_pre) + "{{ end }}")
    else:
        user_pre = _lit(parts.user_pre)
    if last_user_system:
        user_pre += ("{{ if and " + (present or "$.System") + " (eq $i $lastUser) }}" + _lit(parts.sys_pre)
                     + "{{ $.System }}" + _lit(parts.sys_post) + "{{ end }}")
    gen = _lit(parts.gen)
    asst_pre = _lit(parts.asst_pre)
    if parts.no_think_gen:
        # only an explicit think=false turns thinking off: Ollama >= 0.12 sets an unset flag to true for a
        # thinking model, older versions leave it unset (IsThinkSet false), both mean the template's default
        gen += "{{ if and $.IsThinkSet (not $.Think) }}" + _lit(parts.no_think_gen) + "{{ end }}"
        cut = parts.no_think_gen.index("\n") + 1 if "\n" in parts.no_think_gen else len(parts.no_think_gen) // 2
        asst_pre += ("{{ if and .Thinking (gt $i $lastUser) }}" + _lit(parts.no_think_gen[:cut]) + "{{ .Thinking }}"
                     + _lit(parts.no_think_gen[cut:]) + "{{ end }}")
    lines.append('{{ if eq .Role "user" }}' + user_pre + "{{ .Content }}" + _lit(parts.user_post)
                 + "{{ if $last }}" + gen + "{{ end }}")
    lines.append('{{ else if eq .Role "assistant" }}' + asst_pre + "{{ .Content }}"
                 + "{{ if not $last }}" + _lit(parts.asst_post) + "{{ end }}")
    lines.append("{{ end }}")
    if track_prev:
        lines.append("{{ $prev = .Role }}")
    lines.append("{{ end }}")
    text = "\n".join(lines[:1] + ["{{-" + line[2:] for line in lines[1:]])
    if parts.head:
        return _lit(parts.head) + text
    return "{{-" + text[2:]
