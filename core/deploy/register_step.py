"""The register step: the one function ``ftwiz register`` and the wizard's deploy step call.

Given a GGUF (or a run: its newest fine-tuned export; a GGUF it exported with ``--out`` elsewhere is found by
the models registry's record), the run's recipe supplies the defaults (Ollama name,
SYSTEM prompt, ``enable_thinking``, and ``cutoff_len`` for ``num_ctx`` by the rule serve and chat follow); a GGUF outside a run takes them from the
``ftwiz.*`` keys its export wrote into it (:mod:`ftwiz.core.trained_context`, which also wins over the recipe
of the run it sits in), else from the caller's recipe (the wizard's), else none. The model is registered with Ollama, smoke-tested, and recorded in
the models registry, so ``ftwiz models list`` shows it whichever way it was registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.deploy.ollama_register import RegisterResult, register
from ftwiz.core.errors import FtwizError
from ftwiz.core.registry import record_ollama


@dataclass(frozen=True)
class RegisterInputs:
    """What a registration is made of, after defaults: the file, the Ollama name and the Modelfile's fields."""

    gguf: Path
    name: str
    system: str | None
    num_ctx: int | None
    enable_thinking: bool | None


def register_inputs(model: str | Path, *, name: str | None = None, system: str | None = None,
                    num_ctx: int | None = None, recipe=None, adapter: str | Path | None = None) -> RegisterInputs:
    """``model`` (a .gguf or a run name) and the given fields, the rest filled in from the run's recipe when
    the GGUF is a run's fine-tune, else from ``recipe`` (the wizard's) when given. With ``adapter`` (a GGUF LoRA
    adapter applied on top), the system prompt and thinking choice the adapter was trained with (its
    ``ftwiz.*`` keys, else its run folder) come first. FtwizError for anything that is not a GGUF or a run."""
    from ftwiz.core.deploy.chat import resolve_chat_model
    from ftwiz.core.paths import safe_name
    from ftwiz.core.rundir import RunDir

    if num_ctx is not None and num_ctx < 1:  # 0 fell through to the recipe's cutoff_len unsaid
        raise FtwizError(f"--num-ctx {num_ctx} must be at least 1", where="--num-ctx",
                         fix="leave it out to use the model's context length, or give one, e.g. 4096")
    if adapter is not None:  # a text file or a folder was written into the Modelfile's ADAPTER line as it was
        from ftwiz.core.gguf_info import read_gguf_info

        read_gguf_info(adapter)
    ref = resolve_chat_model(str(model))
    if ref.kind != "gguf":
        raise FtwizError(f"'{model}' is not a GGUF file or an ftwiz run", where="GGUF|RUN",
                         fix="give the .gguf path written by `ftwiz export`, or the run name")
    gguf = Path(ref.target)
    if ref.run_dir is not None:  # the run's fine-tune (never a base copy), in its folder or exported with --out
        from ftwiz.core.recipe import load_recipe

        recipe = load_recipe(RunDir(Path(ref.run_dir)).recipe)
    thinking: bool | None = None
    if recipe is not None:
        name = name or recipe.ollama_name
    # prompted as trained: what the GGUF itself records (it may have been moved, renamed or copied from another
    # machine), else its run's recipe, else the recipe given; hybrid-thinking templates keep the run's choice
    trained = ref.trained()
    if adapter is not None:  # the adapter is the fine-tune: it was trained with its run's prompt, not the base's
        from ftwiz.core.trained_context import trained_context

        adapter_run = RunDir.of_file(adapter)
        trained = trained_context(adapter, adapter_run.root if adapter_run else None) or trained
    if trained is not None:
        default_system, thinking = trained.system, trained.enable_thinking
    else:
        default_system = recipe.system if recipe is not None else None
        thinking = getattr(recipe, "enable_thinking", None) if recipe is not None else None
    if num_ctx is None:  # the rule serve and chat follow (context_size.py), so Ollama gets the same window
        num_ctx = _num_ctx(gguf, trained, recipe)
    else:  # as serve and chat refuse --n-ctx: Ollama would cap it at the window without a word
        from ftwiz.core.deploy.context_size import gguf_context_length, refuse_beyond

        refuse_beyond(num_ctx, gguf_context_length(gguf), "--num-ctx")
    system = system if system is not None else default_system
    return RegisterInputs(gguf, name or safe_name(gguf.stem).lower(), system, num_ctx, thinking)


def _num_ctx(gguf: Path, trained, recipe) -> int:
    """Ollama's ``num_ctx`` (tokens) by :func:`~ftwiz.core.deploy.context_size.context_rule`. The trained length
    is the one the GGUF records (else its run's recipe): a moved GGUF registered from the wizard must not take
    the wizard recipe's cutoff_len; the recipe given counts only for a GGUF that records none. A shorter
    cutoff_len than the model's window no longer becomes num_ctx: Ollama then dropped the start of a long chat
    without a word."""
    from ftwiz.core.deploy.context_size import context_rule, gguf_context_length

    cutoff = trained.cutoff_len if trained is not None else None
    if cutoff is None and recipe is not None:
        cutoff = recipe.cutoff_len
    return context_rule(gguf_context_length(gguf), cutoff).n_ctx


def register_model(inputs: RegisterInputs, *, host: str | None = None, smoke_test: bool = True,
                   adapter: str | Path | None = None, license: str | None = None, overwrite: bool = False,
                   on_status: Callable[[str], None] | None = None, force_unverified: bool = False) -> RegisterResult:
    """Register ``inputs`` with Ollama (see :func:`ftwiz.core.deploy.ollama_register.register`) and record
    the Ollama name in the models registry."""
    result = register(inputs.gguf, inputs.name, system=inputs.system, num_ctx=inputs.num_ctx, host=host,
                      smoke_test=smoke_test, adapter=adapter, license=license, overwrite=overwrite,
                      on_status=on_status, enable_thinking=inputs.enable_thinking,
                      force_unverified=force_unverified)
    record_ollama(inputs.gguf, result.name, result.host)
    return result
