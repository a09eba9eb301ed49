"""Fill the GGUF vocabulary cache ahead of the first export, where ftwiz already holds the tokenizer.

The first ``ftwiz export`` of a tokenizer parses and packs its vocabulary (~0.5 s of a ~1.5 s F16 export for
Qwen2's 151k tokens; :mod:`ftwiz.core.export.vocab_cache`); later exports read it back in milliseconds. Training
saves the tokenizer next to its adapter and a download brings a model's: the cache is filled there, after
minutes of work, so the export that follows finds it. The merge copies tokenizer.json byte for byte, so the
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

        n_vocab = model_params(model_dir).vocab_size
        with collector_paused():
            _, _, vocab = read_vocab(tokenizer_dir, n_vocab)
        return vocab is not None and lookup(cache_key(tokenizer_dir, n_vocab)) is not None
    except Exception as exc:  # noqa: BLE001 - never fails the training or download that calls it
        log.debug("vocabulary cache not filled for %s: %s", tokenizer_dir, exc)
        return False
