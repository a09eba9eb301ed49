"""Multi-turn chat with a fine-tuned model: a GGUF (llama.cpp), an Ollama model, or a run's export.

Why the model's own template: a GGUF is chatted with through the Jinja chat template embedded in it
(the one training used), via llama-cpp-python's ``Jinja2ChatFormatter``; an Ollama model through
``/api/chat`` with the TEMPLATE ``ftwiz register`` checked. The session keeps the history, the system
prompt and the temperature, and handles the slash commands the terminal chat and the wizard share
(``/reset``, ``/save PATH``, ``/system TEXT``, ``/temperature X``, ``/help``, ``/exit``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ftwiz.core.atomic import write_text_atomic
from ftwiz.core.deploy.context_size import as_allocated, choose_n_ctx
from ftwiz.core.deploy.ollama_chat import OllamaBackend, refuse_num_ctx_beyond_window, require_ollama
from ftwiz.core.deploy.server import check_counts
from ftwiz.core.errors import FtwizError
from ftwiz.core.gguf_info import GGUFInfo
from ftwiz.core.paths import runs_dir

HELP = ("/reset  forget the conversation    /save PATH  write the transcript (.json or Markdown)\n"
        "/system TEXT  set the system prompt  /temperature X  set sampling temperature\n"
        "/help  this text                     /exit  leave (or Ctrl-D)")
_OLLAMA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?(:[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class Backend(Protocol):
    label: str
    last_finish_reason: str | None

    def stream(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int,
               seed: int | None) -> Iterator[str]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ModelRef:
    """What ``MODEL`` on the command line turned out to be."""

    kind: str          # "gguf" | "ollama"
    target: str        # the GGUF path or the Ollama name
    source: str        # what the user typed (a run name shows up here)
    run_dir: str | None = None  # the run the GGUF came from: MODEL named a run, or a GGUF in its export/

    def trained(self):
        """How the GGUF was trained to be prompted (:func:`ftwiz.core.trained_context.trained_context`): the
        keys its export wrote into it, else its run's recipe; None for an Ollama model or a GGUF without either."""
        if self.kind != "gguf":
            return None
        cached = self.__dict__.get("_trained", False)
        if cached is False:
            from ftwiz.core.trained_context import trained_context

            cached = trained_context(self.target, self.run_dir)
            object.__setattr__(self, "_trained", cached)
        return cached

    def run_enable_thinking(self) -> bool | None:
        """The run's ``enable_thinking`` (None: not set, or not a fine-tune ftwiz knows): chat renders as trained."""
        trained = self.trained()
        return trained.enable_thinking if trained is not None else None

    def run_system_prompt(self) -> str | None:
        """The run's system prompt: training used it for records without one, so chat should too."""
        trained = self.trained()
        return trained.system if trained is not None else None


def resolve_chat_model(model: str | Path) -> ModelRef:
    """A GGUF path, a run (its newest fine-tuned export, see RunDir.latest_gguf) or an Ollama model name."""
    text = str(model)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise FtwizError(f"{path} is not a .gguf file", where=str(path),
                             fix="export the model first: `ftwiz export RUN` writes runs/<run>/export/*.gguf")
        from ftwiz.core.rundir import RunDir, export_role

        # a run's own export chats as the run does (its recipe's system prompt and thinking), as register does;
        # one written elsewhere (export --out) is found by the models registry's record of its source run
        run = RunDir.of_file(path)
        if run is None:
            from ftwiz.core.registry import run_of_export

            run = run_of_export(path)
        run_dir = str(run.root) if run is not None and export_role(path.resolve()) == "fine-tuned" else None
        return ModelRef("gguf", str(path.resolve()), text, run_dir=run_dir)
    run_root = path if (path / "recipe.yaml").is_file() else runs_dir() / text
    if (run_root / "recipe.yaml").is_file():
        from ftwiz.core.rundir import RunDir

        run = RunDir(run_root.resolve())  # its own fine-tuned export, never the base copy made for comparing
        return ModelRef("gguf", str(run.require_gguf()), text, run_dir=str(run.root))
    if path.suffix.lower() == ".gguf" or "/" in text and (text.startswith((".", "/", "~")) or path.parent.exists()):
        raise FtwizError(f"GGUF file not found: {path}", where=str(path),
                         fix="check the path; `ftwiz models list` shows what ftwiz exported")
    if any((folder / name).is_file() for folder in (path, runs_dir() / text) for name in ("run_card.json", "status.json")):
        from ftwiz.core.rundir import RunDir

        RunDir.resolve(text)  # a run folder without its recipe.yaml says why, rather than being an Ollama name
    if _OLLAMA_NAME.match(text):
        return ModelRef("ollama", text, text)
    raise FtwizError(f"'{text}' is neither a GGUF file, an ftwiz run, nor an Ollama model name", where="MODEL",
                     fix="give a .gguf path, a run name under runs/, or a name from `ollama list`")


def chat_formatter(info: GGUFInfo) -> tuple[Any, list[str]]:
    """llama-cpp-python's Jinja2ChatFormatter for the GGUF's embedded template, and its stop strings.

    Stops on every end-of-turn control token of the template (as the Modelfile does), not only EOS:
    a ChatML model that ends a turn with ``<|endoftext|>`` instead of ``<|im_end|>`` still stops.
    """
    from ftwiz.core.deploy.stops import template_end_strings
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    if not info.chat_template:
        raise FtwizError("the GGUF has no embedded chat template, so its turns cannot be formatted as in training",
                         where=str(info.path), fix="export again from a tokenizer with a chat_template")
    # the template's end-of-turn markers and every end token the GGUF names (eos, eot), as in the Modelfile
    candidates = template_end_strings(info.chat_template, bos_token=info.bos_token, eos_token=info.eos_token)
    stops = [t for t in dict.fromkeys([*candidates, *info.end_tokens]) if t and info.is_control(t)]
    formatter = Jinja2ChatFormatter(template=info.chat_template, eos_token=info.eos_token or "",
                                    bos_token=info.bos_token or "",
                                    stop_token_ids=[info.tokens.index(t) for t in stops] or None)
    return formatter, stops


class LlamaCppBackend:
    """A GGUF loaded in-process with llama-cpp-python, chatting through its embedded Jinja template."""

    def __init__(self, gguf: Path, *, n_ctx: int | None = None, n_threads: int | None = None,
                 seed: int | None = None, enable_thinking: bool | None = None) -> None:
        from ftwiz.core import llama_logs
        from ftwiz.core.gguf_info import read_gguf_info
        from llama_cpp import Llama

        llama_logs.install()  # llama.cpp's warnings would otherwise draw over the wizard's chat screen

        info = read_gguf_info(gguf)
        formatter, stop_texts = chat_formatter(info)
        self.context = as_allocated(choose_n_ctx(gguf, n_ctx, context_length=info.context_length))
        n_ctx = self.context.n_ctx
        handler = formatter.to_chat_handler()
        if enable_thinking is not None:  # a hybrid-thinking template's flag, as the run trained with
            base_handler = handler

            def handler(*args: Any, **kw: Any) -> Any:
                return base_handler(*args, **{**kw, "enable_thinking": enable_thinking})

        kwargs: dict[str, Any] = {"model_path": str(info.path), "n_ctx": n_ctx, "verbose": False,
                                  "chat_handler": handler}
        if n_threads:
            kwargs["n_threads"] = n_threads
        if seed is not None:
            kwargs["seed"] = seed
        try:
            self.llm = Llama(**kwargs)
        except ValueError as exc:
            if "llama_context" in str(exc):  # the weights loaded; the context's KV cache did not fit in memory
                raise FtwizError(f"llama.cpp loaded the model but could not allocate its context of {n_ctx} tokens "
                                 f"({self.context.reason}): {exc}", where=str(gguf),
                                 fix="give a smaller --n-ctx (e.g. 2048), or free memory") from None
            raise FtwizError(f"llama.cpp could not load the GGUF: {exc}", where=str(gguf),
                             fix="check it with `ftwiz export --verify`; it may be truncated") from None
        self.label = info.path.name
        self.stop_texts = stop_texts
        from ftwiz.core.deploy.text_stops import text_end_markers

        self.text_stops = text_end_markers(info)  # an end of turn the vocabulary has only as text: stop on it
        self.template, self.bos_token, self.eos_token = info.chat_template, info.bos_token, info.eos_token
        self.last_finish_reason: str | None = None

    def stream(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int,
               seed: int | None) -> Iterator[str]:
        self.last_finish_reason = None
        from ftwiz.core.chat_templates.system_fold import as_accepted

        # a template without a system role (Gemma 2) was trained with the system text in the first user turn
        with contextlib.suppress(FtwizError):  # refused either way: llama.cpp's handler gives its own error
            messages = as_accepted(self.template, messages, bos_token=self.bos_token or "",
                                   eos_token=self.eos_token or "")
        chunks = self.llm.create_chat_completion(messages=messages, temperature=temperature, max_tokens=max_tokens,
                                                 stream=True, seed=seed, stop=self.text_stops or None)
        try:
            first = next(chunks)  # the prompt is checked against the context when the first piece is asked for
        except StopIteration:
            return
        except ValueError as exc:
            if "exceed context window" not in str(exc):
                raise
            raise FtwizError(f"the conversation no longer fits the context of {self.context.n_ctx} tokens "
                             f"({exc})", where=self.label,
                             fix="start over with /reset, shorten the message, or chat again with a larger "
                                 "--n-ctx") from None
        for chunk in itertools.chain([first], chunks):
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content")
            if text:
                yield text
            if choice.get("finish_reason"):
                self.last_finish_reason = choice["finish_reason"]

    def close(self) -> None:
        self.llm.close()


def open_backend(model: str | Path, *, host: str | None = None, n_ctx: int | None = None, n_threads: int | None = None,
                 seed: int | None = None, force_unverified: bool = False) -> Backend:
    """The model's backend; a GGUF whose `export --verify` failed is refused (VerifyFailedRefusal) unless forced."""
    ref = resolve_chat_model(model)
    if ref.kind == "gguf":
        from ftwiz.core.export.verify_record import require_verified

        require_verified(ref.target, force=force_unverified, command="chat")  # the CLI's and the wizard's one check
        context = choose_n_ctx(ref, n_ctx)  # from the run's records too, which the file alone may lack
        backend = LlamaCppBackend(Path(ref.target), n_ctx=context.n_ctx, n_threads=n_threads, seed=seed,
                                  enable_thinking=ref.run_enable_thinking())
        backend.context = as_allocated(context)  # the reason the user is shown, not "as given"
        return backend
    backend = OllamaBackend(ref.target, host=host, num_ctx=n_ctx)
    require_ollama(backend)
    refuse_num_ctx_beyond_window(backend)
    return backend


@dataclass
class CommandResult:
    message: str
    exit: bool = False


class ChatSession:
    """History, system prompt and temperature around one model; ``stream_reply`` yields text as it comes."""

    def __init__(self, model: str | Path | Backend, *, system: str | None = None, temperature: float = 0.7,
                 max_tokens: int = 512, seed: int | None = None, host: str | None = None,
                 n_ctx: int | None = None, n_threads: int | None = None, force_unverified: bool = False) -> None:
        if temperature < 0:
            raise FtwizError(f"temperature must be >= 0, got {temperature}", where="--temperature",
                             fix="use 0 for deterministic answers, 0.7 for varied ones")
        check_counts({"--max-tokens": max_tokens, "--n-ctx": n_ctx, "--threads": n_threads})
        self.backend: Backend = (model if hasattr(model, "stream") else  # type: ignore[assignment]
                                 open_backend(model, host=host, n_ctx=n_ctx, n_threads=n_threads, seed=seed,
                                              force_unverified=force_unverified))
        self.system = system
        if system == "" and hasattr(self.backend, "no_default_system"):  # "" is no system prompt, not the model's
            self.backend.no_default_system = True
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.history: list[dict[str, str]] = []

    @property
    def label(self) -> str:
        return self.backend.label

    @property
    def last_finish_reason(self) -> str | None:
        return self.backend.last_finish_reason

    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + list(self.history)

    def stream_reply(self, user_text: str) -> Iterator[str]:
        """Send a user turn and yield the answer's pieces; the answer joins the history when done."""
        if not user_text.strip():
            raise FtwizError("empty message", fix="type something, or /help")
        self.history.append({"role": "user", "content": user_text})
        pieces: list[str] = []
        try:
            for piece in self.backend.stream(self.messages(), temperature=self.temperature,
                                             max_tokens=self.max_tokens, seed=self.seed):
                pieces.append(piece)
                yield piece
        finally:
            if pieces:
                self.history.append({"role": "assistant", "content": "".join(pieces)})
            else:  # nothing came back (error or interrupt): the turn did not happen
                self.history.pop()

    def reply(self, user_text: str) -> str:
        return "".join(self.stream_reply(user_text))

    def reset(self) -> None:
        self.history.clear()

    def transcript(self) -> dict[str, Any]:
        return {"model": self.label, "system": self.system, "temperature": self.temperature,
                "messages": self.messages()}

    def save(self, path: str | Path) -> Path:
        """Write the conversation: JSON for ``.json``, Markdown otherwise. Never overwrites a file."""
        target = Path(path).expanduser()
        if target.exists():
            raise FtwizError(f"{target} already exists", where=str(target), fix="choose another file name")
        if target.suffix.lower() == ".json":
            text = json.dumps(self.transcript(), indent=2, ensure_ascii=False) + "\n"
        else:
            lines = [f"# Chat with {self.label}", "", f"temperature: {self.temperature}", ""]
            for msg in self.messages():
                lines += [f"**{msg['role']}**:", "", msg["content"], ""]
            text = "\n".join(lines)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(target, text, overwrite=False)

    def run_command(self, line: str) -> CommandResult | None:
        """Handle a ``/command``; None when ``line`` is not one (then it is a message)."""
        if not line.startswith("/"):
            return None
        word, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if word in ("/exit", "/quit", "/bye"):
            return CommandResult("bye", exit=True)
        if word == "/reset":
            self.reset()
            return CommandResult("conversation cleared")
        if word == "/help":
            return CommandResult(HELP)
        if word == "/save":
            if not arg:
                return CommandResult("usage: /save PATH")
            try:
                return CommandResult(f"saved {self.save(arg)}")
            except FtwizError as exc:
                return CommandResult(f"not saved: {exc.what}")
        if word == "/system":
            self.system = arg or None
            return CommandResult(f"system prompt {'set' if arg else 'cleared'}")
        if word == "/temperature":
            try:
                value = float(arg)
                if value < 0:
                    raise ValueError
            except ValueError:
                return CommandResult("usage: /temperature X  (X >= 0)")
            self.temperature = value
            return CommandResult(f"temperature {value}")
        return CommandResult(f"unknown command {word}; /help lists them")

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
