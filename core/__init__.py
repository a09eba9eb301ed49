"""ftwiz.core: every stage of the fine-tuning flow as plain functions with typed inputs and results.

The core never imports Textual (the wizard lives in ``ftwiz.tui``) and never imports torch or
transformers at module level, so ``import ftwiz.core`` and ``ftwiz --help`` stay fast. Heavy imports
happen inside the functions that need them.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__`` on first use: importlib.metadata costs tens of milliseconds that every verb would pay."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import metadata

    try:
        version = metadata.version("ftwiz")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        version = "0.0.0+source"
    globals()["__version__"] = version
    return version
