"""An Ollama Modelfile for a GGUF, with a TEMPLATE proven equal to the model's own chat template.

The same :class:`ModelfileSpec` feeds both the Modelfile text (for ``ollama create -f``) and the REST
registration (``/api/create`` with ``files``/``template``/``parameters``/``system``), so the two paths
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.deploy.collate_note import consecutive_turns_note
from ftwiz.core.deploy.modelfile_text import require_parsable
from ftwiz.core.deploy.probes import Renderer
from ftwiz.core.deploy.templates import OllamaTemplate, ollama_prompt, ollama_template, probe_conversations
from ftwiz.core.deploy.token_check import GGUFVocab, TokenReport, compare_tokens
from ftwiz.core.deploy.tool_support import tools_note
from ftwiz.core.errors import FtwizError
from ftwiz.core.gguf_info import CONTROL_TOKEN_TYPE, GGUFInfo, read_gguf_info


@dataclass(frozen=True)
class ModelfileSpec:
    """Everything a Modelfile says, as data."""

    gguf: Path
    template: OllamaTemplate
    stops: list[str]
    system: str | None = None
    num_ctx: int | None = None
    adapter: Path | None = None
    license: str | None = None
    info: GGUFInfo | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()    # facts the user should know (written as comments into the Modelfile)
    failed_verify: str = ""        # the `export --verify` checks this GGUF failed (used anyway with --force)

    @property
    def parameters(self) -> dict[str, object]:
        params: dict[str, object] = {"stop": list(self.stops)}
        if self.num_ctx:
            params["num_ctx"] = int(self.num_ctx)
        return params

    def file_text(self) -> str:
        """The Modelfile text for ``ollama create -f``; FtwizError when its parser would change the SYSTEM or
        TEMPLATE (:mod:`~ftwiz.core.deploy.modelfile_text`). ``render`` is the same text, unchecked."""
        require_parsable("SYSTEM", self.system)
        require_parsable("TEMPLATE", self.template.template)
        require_parsable("LICENSE", self.license)
        for stop in self.stops:  # a stop string Ollama reads otherwise would not stop the answer
            require_parsable("stop string", stop)
        return self.render()

    def render(self) -> str:
        if self.failed_verify:  # the GGUF's tokens are not the model's: claim only what was compared
            checked = ["# TEMPLATE checked against the GGUF's embedded chat template only. WARNING: this GGUF FAILED"
                       f" `ftwiz export --verify` ({self.failed_verify}) and was used anyway (--force)."]
        else:
            checked = ["# checked against the model's own chat template on 1-3 turn conversations, as text and as"
                       " llama.cpp tokens (BOS included)."]
        lines = [f"# Written by ftwiz for {self.gguf.name}: template family '{self.template.family}',",
                 *checked,
                 *[f"# note: {note}" for note in self.notes],
                 f"FROM {_path(self.gguf)}"]
        if self.adapter:
            lines.append(f"ADAPTER {_path(self.adapter)}")
        lines.append(f'TEMPLATE """{_triple(self.template.template, "TEMPLATE")}"""')
        lines += [f"PARAMETER stop {_quote(stop, 'stop string')}" for stop in self.stops]
        if self.num_ctx:
            lines.append(f"PARAMETER num_ctx {int(self.num_ctx)}")
        if self.system:
            lines.append(f'SYSTEM """{_triple(self.system, "SYSTEM")}"""')
        if self.license:
            lines.append(f'LICENSE """{_triple(self.license, "LICENSE")}"""')
        return "\n".join(lines) + "\n"


def _path(path: Path) -> str:
    text = str(path)
    return _quote(text, "path") if any(c.isspace() for c in text) or text.startswith('"') else text


def _quote(text: str, what: str = "value") -> str:
    """``text`` as one Modelfile value that Ollama's parser reads back unchanged.

    The parser only strips the quotes (no escapes: a backslash would stay in the value) and ends a value at
    the first line break where the text so far starts and ends with the same quotes, so a value holding a
    quote or a line break goes in triple quotes, which it may not contain itself.
    """
    if '"' in text or "\n" in text or "\r" in text:
        return '"""' + _triple(text, what) + '"""'
    return '"' + text + '"'


def _triple(text: str, what: str) -> str:
    if '"""' in text:
        raise FtwizError(f'the {what} contains """, which a Modelfile cannot hold', where=what,
                         fix="remove the triple quotes from it")
    return text


def stop_tokens(template: OllamaTemplate, info: GGUFInfo, end_of_generation: Sequence[str] = ()) -> list[str]:
    """The template's end-of-turn strings that are control tokens in the GGUF vocabulary, then every token
    the GGUF ends generation on: the ids it names (eos, eot: generation_config.json's eos_token_id as the
    export recorded it) and ``end_of_generation`` (llama.cpp's own end-of-generation set).

    A stop string that is not a control token would be split into ordinary pieces by the tokenizer and
    could leak into answers, so only control tokens qualify; at least one must end the assistant turn.
    The one exception: a marker the template writes right after every answer that the vocabulary only has
    as text (``template: chatml`` on a Llama base); the model ends its answers with that text, never with a
    token, so it is a stop too (core/deploy/text_stops.py).
    """
    from ftwiz.core.deploy.text_stops import text_end_markers

    candidates = [*template.stop_candidates, *info.end_tokens, *end_of_generation]
    stops = [s for s in dict.fromkeys(candidates) if info.is_control(s)] + text_end_markers(info)
    ends_turn = [s for s in stops if s in template.parts.asst_post or s in template.parts.user_pre
                 or s in info.end_tokens]
    if not ends_turn:
        raise FtwizError(
            f"none of the end-of-turn tokens {list(template.stop_candidates)} is a control token in the GGUF"
            " vocabulary, so Ollama could not tell where an answer ends",
            where=str(info.path),
            fix="export again from a tokenizer whose end-of-turn token is a special token "
                "(added_tokens with special=true in tokenizer.json)",
        )
    return stops


def check_tokens(info: GGUFInfo, template: OllamaTemplate, *, enable_thinking: bool | None = None,
                 vocab: GGUFVocab | None = None) -> TokenReport:
    """Ollama's prompts for the probe conversations, as llama.cpp tokens of this GGUF, against training's.

    FtwizError on a double or missing BOS or any other token difference (see :mod:`token_check`).
    """
    renderer = Renderer(info.chat_template or "", info.bos_token, info.eos_token, False,
                        enable_thinking=True if template.parts.no_think_gen else enable_thinking)
    conversations = [c for c in probe_conversations() if template.system_supported or c[0]["role"] != "system"]
    pairs = [(c, renderer.full(c), ollama_prompt(template.template, c)) for c in conversations]
    vocab = vocab or GGUFVocab(info.path)
    return compare_tokens(vocab.tokenize, vocab.bos_id, pairs)


def modelfile_spec(gguf_path: str | Path, *, system: str | None = None, num_ctx: int | None = None,
                   adapter: str | Path | None = None, license: str | None = None,
                   enable_thinking: bool | None = None, force: bool = False) -> ModelfileSpec:
    """Read the GGUF, build and check its TEMPLATE (text and tokens), pick stop tokens; errors say what to fix.

    ``enable_thinking`` is the recipe's flag for hybrid-thinking templates (None: the template's default).
    FtwizError when ``export --verify`` failed on this GGUF, unless ``force`` (then the Modelfile says so).
    """
    from ftwiz.core.export.verify_record import describe, require_verified

    failed = describe(require_verified(gguf_path, force=force, command="register"))
    info = read_gguf_info(gguf_path)
    template = ollama_template(info.chat_template, bos_token=info.bos_token, eos_token=info.eos_token,
                               runtime_adds_bos=info.add_bos, enable_thinking=enable_thinking)
    if system and not template.system_supported:
        raise FtwizError("this model's chat template has no faithful place for a system prompt in an Ollama "
                         "TEMPLATE (it has no system role, or puts it where a TEMPLATE cannot), so Ollama would "
                         "prompt the model differently from training", where="system",
                         fix="register without a system prompt (drop --system / the recipe's system), or serve the "
                             "GGUF with `ftwiz serve`: llama.cpp applies its own chat template, system prompt included")
    if num_ctx is not None and num_ctx <= 0:
        raise FtwizError(f"num_ctx must be positive, got {num_ctx}", where="num_ctx",
                         fix="use the training cutoff_len, e.g. 2048")
    adapter_path = None
    if adapter is not None:
        adapter_path = Path(adapter).expanduser().resolve()
        if not adapter_path.exists():
            raise FtwizError(f"adapter not found: {adapter_path}", where="adapter",
                             fix="give the GGUF LoRA adapter file or the adapter directory")
    vocab = GGUFVocab(info.path)
    report = check_tokens(info, template, enable_thinking=enable_thinking, vocab=vocab)
    controls = [i for i, kind in enumerate(info.token_types) if kind == CONTROL_TOKEN_TYPE]
    eog = [info.tokens[i] for i in vocab.end_of_generation(controls)]
    notes = [n for n in (report.note(),) if n]
    if template.parts.no_think_gen:
        notes.append("thinking is on by default, as in training; a request with think=false renders the "
                     "template's thinking-off prompt")
    tools = tools_note(info.chat_template, template.template, bos_token=info.bos_token, eos_token=info.eos_token)
    if tools:
        notes.append(tools)
    collated = consecutive_turns_note(template.template, Renderer(
        info.chat_template, bos_token=info.bos_token, eos_token=info.eos_token, runtime_adds_bos=info.add_bos,
        enable_thinking=enable_thinking))
    if collated:
        notes.append(collated)
    return ModelfileSpec(gguf=info.path, template=template, stops=stop_tokens(template, info, eog), system=system,
                         num_ctx=num_ctx, adapter=adapter_path, license=license, info=info, notes=tuple(notes),
                         failed_verify=failed)


def build_modelfile(gguf_path: str | Path, *, system: str | None = None, num_ctx: int | None = None,
                    adapter: str | Path | None = None, license: str | None = None,
                    enable_thinking: bool | None = None, force: bool = False) -> str:
    """The Modelfile text for ``ollama create -f``: FROM, ADAPTER, TEMPLATE, stop/num_ctx, SYSTEM, LICENSE."""
    return modelfile_spec(gguf_path, system=system, num_ctx=num_ctx, adapter=adapter, license=license,
                          enable_thinking=enable_thinking, force=force).file_text()
