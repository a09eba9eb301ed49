"""How many tokens of context a GGUF is run with when the user names none: the one rule behind ``ftwiz serve``,
``ftwiz chat``, ``ftwiz service install`` and the wizard's Serve and Chat.

    from ftwiz.core.deploy.context_size import choose_n_ctx
    choose_n_ctx("runs/demo/export/demo-Q8_0.gguf")   # ContextChoice(n_ctx=4096, reason="the model's ...")

The rule, in order:

1. a length the user gives (``--n-ctx``) always wins;
2. otherwise the model's own ``<arch>.context_length``, capped at :data:`CONTEXT_CAP` tokens (:data:`FALLBACK`
   when the GGUF records none). Why a cap: llama.cpp allocates the whole KV cache up front, and GGUFs record
   their architecture's full window: Llama 3.1 8B records 131072 tokens, an F16 KV cache of 16 GiB;
3. a fine-tune trained on longer sequences than that (``cutoff_len``, which ``ftwiz export`` writes into the
   GGUF as ``ftwiz.cutoff_len``, else its run's recipe: :meth:`ModelRef.trained`) gets its trained length, up to
   the model's context_length: training already held activations for that length, so its KV cache fits.

A trained length *shorter* than (2) does not shrink the context: LoRA at 512 tokens keeps the base model's longer
window, and a shorter context only makes a long chat fail ("Requested tokens exceed context window").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ftwiz.core.deploy.chat import ModelRef

CONTEXT_CAP = 4096  # tokens; at most this from context_length alone (see the module docstring)
FALLBACK = 2048  # tokens, for a GGUF without <arch>.context_length
LLAMA_CTX_PAD = 256  # tokens; llama.cpp rounds every context it allocates up to a multiple of this


@dataclass(frozen=True)
class ContextChoice:
    """The context length chosen (tokens) and why, in words for a start-up line."""

    n_ctx: int
    reason: str


def gguf_context_length(gguf: str | Path) -> int | None:
    """``<arch>.context_length`` of the GGUF (tokens), or None when absent or the file cannot be read (the loader
    says why a file is unreadable; the vocabulary is stepped over, not read)."""
    import struct

    from ftwiz.core.gguf_info import read_metadata

    try:
        meta = read_metadata(Path(gguf), wanted=lambda key: key == "general.architecture"
                             or key.endswith(".context_length"))
    except (OSError, ValueError, struct.error, IndexError):
        return None
    value = meta.get(f"{meta.get('general.architecture')}.context_length")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def choose_n_ctx(model: ModelRef | str | Path, given: int | None = None, *,
                 context_length: int | None = None) -> ContextChoice:
    """The context for ``model`` (a resolved GGUF :class:`ModelRef`, or a .gguf path / run name resolved here).

    ``given``: the user's ``--n-ctx`` (None: choose); it is returned unchanged, even when below 1 (the caller's
    ``check_counts`` refuses it with the flag's name). ``context_length``: the GGUF's, when the caller has read it
    already (None: read here).

    Raises FtwizError for a ``given`` beyond the GGUF's context_length: the model never saw longer text, and
    llama.cpp would allocate it all up front (``--n-ctx 2000000000`` on a 1 MiB model was killed for memory).
    Ollama, likewise, never runs a model past its context_length.
    """
    if given is not None:
        _refuse_beyond_window(model, given, context_length)
        return ContextChoice(given, "as given with --n-ctx")
    from ftwiz.core.deploy.chat import ModelRef, resolve_chat_model
    from ftwiz.core.errors import FtwizError

    if isinstance(model, ModelRef):
        target, trained = model.target, model.trained()
    else:
        try:
            ref = resolve_chat_model(model)
            target, trained = ref.target, ref.trained()
        except FtwizError:  # a GGUF without the .gguf suffix (an Ollama blob) given to start_server: its own keys
            from ftwiz.core.trained_context import read_gguf_context

            target, trained = str(model), read_gguf_context(model)
    limit = context_length if context_length is not None else gguf_context_length(target)
    return context_rule(limit, trained.cutoff_len if trained is not None else None)


def _refuse_beyond_window(model: ModelRef | str | Path, given: int, context_length: int | None) -> None:
    """FtwizError when ``given`` (tokens) is more than the GGUF's context_length (a GGUF recording none: no limit)."""
    if given < 1:
        return
    if context_length is None:
        from ftwiz.core.errors import FtwizError

        target = getattr(model, "target", model)  # a ModelRef's GGUF, or the path / run name given
        if not Path(target).is_file():  # a run name: its newest GGUF
            from ftwiz.core.deploy.chat import resolve_chat_model

            try:
                target = resolve_chat_model(target).target
            except FtwizError:  # said by the caller, which resolves it again
                return
        context_length = gguf_context_length(target)
    refuse_beyond(given, context_length, "--n-ctx")


def refuse_beyond(given: int, context_length: int | None, flag: str) -> None:
    """FtwizError naming ``flag`` when ``given`` (tokens) is more than ``context_length`` (None: no limit)."""
    if context_length is not None and given > context_length:
        from ftwiz.core.errors import FtwizError

        raise FtwizError(f"{flag} {given} is more than the model's context_length {context_length}",
                         where=flag, fix=f"give at most {context_length} tokens, or leave {flag} out for "
                                         "the default (the model's window, up to 4096)")


def context_rule(limit: int | None, cutoff: int | None) -> ContextChoice:
    """Rules 2 and 3 of the module docstring: ``limit`` the GGUF's context_length (None: not recorded), ``cutoff``
    the trained cutoff_len (None: unknown), both in tokens. For callers that found the trained length themselves
    (``ftwiz register``: an adapter's run, the wizard's recipe)."""
    if limit is None:
        default, reason = FALLBACK, f"the GGUF records no context_length; {FALLBACK} by default"
    elif limit > CONTEXT_CAP:
        default, reason = CONTEXT_CAP, f"the model's context_length {limit}, capped at {CONTEXT_CAP} to bound memory"
    else:
        default, reason = limit, f"the model's context_length {limit}"
    if cutoff is None:
        return ContextChoice(default, reason)
    if cutoff <= default:
        return ContextChoice(default, f"{reason}; trained with cutoff_len {cutoff}, which fits")
    if limit is not None and cutoff > limit:
        return ContextChoice(limit, f"trained with cutoff_len {cutoff}, at most the model's context_length {limit}")
    return ContextChoice(cutoff, f"trained with cutoff_len {cutoff}")


def llama_cpp_n_ctx(n_ctx: int) -> int:
    """The ``n_ctx`` (tokens) to give llama-cpp-python's ``Llama`` for a context of ``n_ctx`` tokens: rounded up to
    :data:`LLAMA_CTX_PAD`, the window llama.cpp allocates anyway (a count below 1 is returned unchanged, for
    ``check_counts`` to refuse by its own number).

    Why: llama-cpp-python sizes its token buffer by the number it is given but checks a prompt against llama.cpp's
    rounded-up window, so a conversation between the two (300 given, 512 allocated) crashed with a numpy broadcast
    error instead of its "exceed context window" refusal.
    """
    return -(-n_ctx // LLAMA_CTX_PAD) * LLAMA_CTX_PAD if n_ctx >= 1 else n_ctx


def as_allocated(context: ContextChoice) -> ContextChoice:
    """``context`` as llama.cpp allocates it (:func:`llama_cpp_n_ctx`), its reason saying so when that differs."""
    allocated = llama_cpp_n_ctx(context.n_ctx)
    if allocated == context.n_ctx:
        return context
    return ContextChoice(allocated, f"{context.reason}, rounded up to a multiple of {LLAMA_CTX_PAD} as llama.cpp "
                                    "allocates it")
