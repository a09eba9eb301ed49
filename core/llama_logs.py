"""Route llama.cpp's log lines into Python logging, at their real level, instead of raw stderr.

Why: llama-cpp-python 0.3.x reads ggml's log levels with an outdated table (it takes WARN, now 3, for
ERROR), so even with ``verbose=False`` llama.cpp's warnings ("using full-size SWA cache", "the prompt
starts with 2 BOS tokens") reach stderr. In the wizard they draw over the screen; in ``ftwiz export
--verify`` they look like failures. :func:`install` replaces the callback: ggml's current levels, the
``ftwiz.llama_cpp`` logger, quiet below ERROR unless that logger is set lower (``--debug`` style tools can).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger("ftwiz.llama_cpp")

# enum ggml_log_level in current ggml: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continue the last line)
GGML_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_CONTINUE = 5

_state: dict[str, Any] = {"callback": None, "level": logging.INFO}


def _on_log(level: int, text: bytes, _user_data: Any) -> None:
    python_level = _state["level"] if level == _CONTINUE else GGML_LEVELS.get(level, logging.INFO)
    _state["level"] = python_level
    if log.isEnabledFor(python_level):
        line = text.decode("utf-8", errors="replace").rstrip("\n")
        if line:
            log.log(python_level, "%s", line)


def install() -> None:
    """Install the callback once per process (idempotent); call before creating a ``llama_cpp.Llama``."""
    if _state["callback"] is not None:
        return
    import llama_cpp

    if log.level == logging.NOTSET:
        log.setLevel(logging.ERROR)
    callback = llama_cpp.llama_log_callback(_on_log)
    _state["callback"] = callback  # ctypes callbacks must stay referenced while C may call them
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
