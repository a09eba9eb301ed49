"""Fill the GGUF vocabulary cache ahead of the first export, where ftwiz already holds the tokenizer.

The first ``ftwiz export`` of a tokenizer parses and packs its vocabulary (~0.25 s of a ~1.2 s F16 export for
Qwen2's 151k tokens; :mod:`ftwiz.core.export.vocab_cache`) and checks the chat template's Jinja syntax (~0.1 s,
:mod:`ftwiz.core.export.template_syntax`); later exports read the vocabulary back in milliseconds and skip the
check. Training saves the tokenizer next to its adapter and a download brings a model's: both are done
there, after minutes of work, so the export that follows finds them done. The merge copies tokenizer.json byte for byte, so the
merged model's export hits the same cache entry.

Best effort: a tokenizer that cannot be read, a model the converter refuses, a cache that cannot be written
only log at debug level; the export reports those itself, with their fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def warm_vocab_cache(tokenizer_dir: str | Path, model_dir: str | Path | None = None) -> bool:
    """Cache the vocabulary of ``tokenizer_dir``'s tokenizer.json at the embedding rows of ``model_dir``'s
    config.json (default: ``tokenizer_dir`` itself; an adapter folder passes its base). True when the cache now
    holds it (byte-level BPE tokenizers; others are not cached and return False)."""
    tokenizer_dir = Path(tokenizer_dir)
    model_dir = Path(model_dir) if model_dir is not None else tokenizer_dir
    try:  # is_file raises for a folder that cannot be searched (permission denied) or a name too long
        if not (tokenizer_dir / "tokenizer.json").is_file() or not (model_dir / "config.json").is_file():
            return False
        from ftwiz.core.export.arch import model_params
        from ftwiz.core.export.convert import collector_paused
        from ftwiz.core.export.vocab_cache import cache_key, lookup, read_vocab

        params = model_params(model_dir)
        n_vocab = params.vocab_size
        with collector_paused():
            tj, merges, vocab = read_vocab(tokenizer_dir, n_vocab)
            if vocab is not None:  # a cached vocabulary: the template check is then the first export's only extra
                _check_template_ahead(tokenizer_dir, params.info.gguf_arch, n_vocab, tj, merges, vocab)
        return vocab is not None and lookup(cache_key(tokenizer_dir, n_vocab)) is not None
    except Exception as exc:  # noqa: BLE001 - never fails the training or download that calls it
        log.debug("vocabulary cache not filled for %s: %s", tokenizer_dir, exc)
        return False


def _check_template_ahead(tokenizer_dir: Path, arch: str, n_vocab: int, tj, merges, vocab) -> None:
    """The export's own vocabulary step, on a writer that never writes a file: the chat template the GGUF will
    carry gets its Jinja check now (:mod:`ftwiz.core.export.template_syntax` remembers a template that parsed),
    so the first export does not import jinja2 for it (~0.1 s of a one-second export). A template that does
    not parse is left for the export to report, with its file and line."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.gguf_kv import BulkGGUFWriter
    from ftwiz.core.export.vocab import write_vocab

    try:
        write_vocab(BulkGGUFWriter(None, arch), tokenizer_dir, n_vocab, tokenizer_json=tj, packed_merges=merges,
                    vocab=vocab)
    except FtwizError as exc:
        log.debug("chat template of %s not checked ahead: %s", tokenizer_dir, exc)

