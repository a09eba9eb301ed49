"""ftwiz.core: every stage of the fine-tuning flow as plain functions with typed inputs and results.

The core never imports Textual (the wizard lives in ``ftwiz.tui``) and never imports torch or
transformers at module level, so ``import ftwiz.core`` and ``ftwiz --help`` stay fast. Heavy imports
happen inside the functions that need them.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("ftwiz")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
