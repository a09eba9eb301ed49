"""The prompt Ollama would send, compared with the training prompt as llama.cpp tokens, BOS included.

Why tokens and not only text: the runtime adds BOS as a token when the GGUF says so
(``tokenizer.ggml.add_bos_token``), outside the TEMPLATE; a TEMPLATE that also writes the BOS text gives
two BOS tokens, one that leaves it out where training had it gives none. Only the token sequence shows
this. Training tokenizes the rendered chat without adding special tokens (``core/data/template.py``), so
its sequence is llama.cpp's tokenization of the Jinja text as is; the serving sequence is what llama.cpp
makes of the Ollama rendering with the runtime's special tokens (``add_special``), as Ollama's runner does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.chat_templates.render import Messages
from ftwiz.core.errors import FtwizError

Tokenize = Callable[[str, bool], list[int]]  # (text, add the runtime's special tokens) -> ids


@dataclass(frozen=True)
class TokenReport:
    """What the comparison found over the probe conversations."""

    conversations: int
    bos_id: int | None
    training_bos: int        # leading BOS tokens in the training prompt (0 or 1)
    serving_bos: int         # leading BOS tokens in what Ollama sends (must equal training_bos, or 1 over 0)
    extra_runtime_bos: bool  # the runtime adds a BOS the training prompt did not have (Ollama cannot omit it)

    def note(self) -> str | None:
        if not self.extra_runtime_bos:
            return None
        # an export of an ftwiz run never gets here (core/export/train_bos.py: add_bos_token follows training)
        return ("the GGUF asks the runtime to add BOS, which this template's prompts do not start with (a GGUF "
                "not exported from an ftwiz run); Ollama and llama.cpp add it, so every prompt starts with a BOS "
                "token the template does not write")


def _leading(ids: Sequence[int], bos: int | None) -> int:
    count = 0
    while bos is not None and count < len(ids) and ids[count] == bos:
        count += 1
    return count


def compare_tokens(tokenize: Tokenize, bos_id: int | None, pairs: Sequence[tuple[Messages, str, str]]) -> TokenReport:
    """Check each (messages, training text, Ollama text); FtwizError on a double, missing or moved token.

    ``training text`` is the Jinja rendering with its BOS text; ``Ollama text`` the TEMPLATE's rendering.
    """
    train_bos = serve_bos = 0
    extra = False
    for messages, train_text, serve_text in pairs:
        train = tokenize(train_text, False)
        serve = tokenize(serve_text, True)
        train_bos, serve_bos = _leading(train, bos_id), _leading(serve, bos_id)
        roles = "/".join(m["role"] for m in messages)
        if serve_bos > 1:
            raise FtwizError(
                f"for a {roles} conversation Ollama's prompt would start with {serve_bos} BOS tokens (the runtime "
                "adds one and the TEMPLATE writes another)", where="TEMPLATE",
                fix="this is a bug in ftwiz's TEMPLATE: use `ftwiz serve` (llama.cpp's own template) meanwhile")
        if serve == train:
            continue
        if serve_bos == 1 and train_bos == 0 and serve[1:] == train:
            extra = True
            continue
        cut = next((i for i, (a, b) in enumerate(zip(train, serve, strict=False)) if a != b), min(len(train), len(serve)))
        raise FtwizError(
            f"for a {roles} conversation the tokens Ollama would send differ from training at token {cut} "
            f"(training {train[max(0, cut - 3):cut + 3]}, Ollama {serve[max(0, cut - 3):cut + 3]}; BOS id {bos_id})",
            where="TEMPLATE",
            fix="use `ftwiz serve` or `ftwiz chat`, which apply the GGUF's own chat template with llama.cpp")
    return TokenReport(len(pairs), bos_id, train_bos, serve_bos, extra)


class GGUFVocab:
    """llama.cpp's view of a GGUF's vocabulary (loaded without weights): tokenization and end-of-generation."""

    def __init__(self, gguf: Path) -> None:
        import llama_cpp
        from ftwiz.core import llama_logs

        llama_logs.install()  # llama.cpp's log lines go to a logger, not over the user's terminal
        self._llama_cpp = llama_cpp
        try:
            self.llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
        except ValueError as exc:  # llama.cpp says only "Failed to load model from file"
            from ftwiz.core.errors import FtwizError

            raise FtwizError(f"llama.cpp could not load the GGUF: {exc}", where=str(gguf),
                             fix="check it with `ftwiz export --verify`; it may be truncated") from None
        bos = self.llm.token_bos()
        self.bos_id: int | None = bos if bos >= 0 else None

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True))

    def end_of_generation(self, token_ids: Sequence[int]) -> list[int]:
        """Those of ``token_ids`` llama.cpp ends generation on (eos, eot, eom and the end-of-turn tokens it
        recognises by name)."""
        vocab = self._llama_cpp.llama_model_get_vocab(self.llm.model)
        return [i for i in token_ids if self._llama_cpp.llama_vocab_is_eog(vocab, i)]


def gguf_tokenizer(gguf: Path) -> tuple[Tokenize, int | None]:
    """llama.cpp's tokenizer for a GGUF (vocabulary only, no weights) and its BOS id (None when it has none)."""
    vocab = GGUFVocab(gguf)
    return vocab.tokenize, vocab.bos_id
