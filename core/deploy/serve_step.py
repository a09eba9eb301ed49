"""The serve step's inputs: the one function ``ftwiz serve`` and the wizard's Serve call before starting the server.

    from ftwiz.core.deploy.serve_step import serve_inputs
    from ftwiz.core.deploy.server import start_server
    inputs = serve_inputs("my-run")                  # refuses a GGUF whose `export --verify` failed
    handle = start_server(inputs.gguf, n_ctx=inputs.context.n_ctx)

Both ways in go through here, so a GGUF proven unlike its model is refused by the wizard as by the CLI (and
served anyway only when the user says so: ``--force``, or the wizard's "Serve anyway"), and both pick the same
context length (:func:`ftwiz.core.deploy.context_size.choose_n_ctx`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ftwiz.core.deploy.context_size import ContextChoice, as_allocated, choose_n_ctx
from ftwiz.core.errors import FtwizError

if TYPE_CHECKING:
    from ftwiz.core.deploy.chat import ModelRef


@dataclass(frozen=True)
class ServeInputs:
    """What a server is started with, after defaults: the GGUF, how its run trained it (``ref``) and its context."""

    gguf: Path
    ref: ModelRef
    context: ContextChoice


def serve_inputs(model: str | Path, *, n_ctx: int | None = None, force_unverified: bool = False) -> ServeInputs:
    """``model`` (a .gguf or a run: its newest fine-tuned export) checked for serving.

    FtwizError for anything that is not a GGUF or a run; :class:`~ftwiz.core.export.verify_record.VerifyFailedRefusal`
    for a GGUF whose ``export --verify`` failed, unless ``force_unverified``. ``n_ctx``: the user's (None: the rule's).
    """
    from ftwiz.core.deploy.chat import resolve_chat_model
    from ftwiz.core.export.verify_record import require_verified

    ref = resolve_chat_model(str(model))
    if ref.kind != "gguf":
        raise FtwizError(f"'{model}' is not a GGUF file or an ftwiz run", where="GGUF|RUN",
                         fix="`ftwiz serve` runs GGUFs; for an Ollama model, Ollama already serves it")
    require_verified(ref.target, force=force_unverified, command="serve")
    return ServeInputs(Path(ref.target), ref, as_allocated(choose_n_ctx(ref, n_ctx)))  # llama.cpp's real window
