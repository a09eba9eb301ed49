"""Where the demo model's one-time build reports its progress when its caller passed no callback.

The CLI sets a progress bar here before running any verb that may build the demo model (``plan``,
``train``, ``export`` ...). It lives apart from :mod:`ftwiz.core.tiny` so that setting it does not import
the tiny-model code, which an export of a real model never runs (15-30 ms of every such command).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_default: Callable[[Any], None] | None = None


def report_builds_to(callback: Callable[[Any], None] | None) -> None:
    """Send builds whose caller passed no ``on_progress`` to ``callback`` (a ``BuildProgress`` receiver),
    or nowhere with None."""
    global _default
    _default = callback


def build_reporter() -> Callable[[Any], None] | None:
    """The callback set by :func:`report_builds_to`, or None."""
    return _default
