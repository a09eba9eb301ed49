"""gguf-py's package, loaded without the modules a GGUF export never uses.

``import gguf`` runs gguf/__init__.py, which imports every module of the package: its model-card reader
(``gguf.metadata``, which brings PyYAML), its file reader and its utilities, 0.035 s together, a twentieth
of a one-second ``ftwiz export --quant F16``. :func:`install` registers the ``gguf`` package without running
that file; the first name looked up on it loads the modules that write a GGUF (constants, the writer, the
quantization tables, the tensor-name maps, the vocabulary loader) and binds their names as the package's own
star-imports would. A name none of them has (``gguf.GGUFReader``, ``gguf.Metadata``) runs the real
gguf/__init__.py in the same module object, after which the package is exactly what ``import gguf`` gives.
Submodules (``import gguf.gguf_reader``) import as usual either way.

Installed by ``ftwiz.core.export`` (its package file), before any export module imports gguf; a process that
imported gguf already keeps it as it is. tests/unit/test_export_gguf_package.py checks every name against a
plain ``import gguf``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

# what gguf/__init__.py star-imports, in its order; the writer's part first
WRITER_MODULES = ("constants", "lazy", "gguf_writer", "quants", "tensor_mapping", "vocab")
_lock = threading.RLock()


def install() -> None:
    """Register the lazily completed ``gguf`` package, unless gguf is imported already or not installed."""
    with _lock:
        if "gguf" in sys.modules:
            return
        spec = importlib.util.find_spec("gguf")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return  # not installed: the import where it is needed says so
        package = importlib.util.module_from_spec(spec)
        state = {"writer": False, "whole": False}

        def __getattr__(name: str) -> Any:  # noqa: N807 - the module attribute hook (PEP 562)
            with _lock:
                if name in package.__dict__:  # bound by another thread while this one waited for the lock
                    return package.__dict__[name]
                if not state["writer"]:
                    state["writer"] = True  # set first: a lookup from inside these imports goes on to the whole
                    try:
                        for sub in WRITER_MODULES:
                            _bind_public(package, importlib.import_module(f"gguf.{sub}"))
                    except BaseException:  # Ctrl-C, a broken install: the next lookup tries again
                        state["writer"] = False
                        raise
                    if name in package.__dict__:
                        return package.__dict__[name]
                if not state["whole"]:
                    state["whole"] = True
                    try:
                        spec.loader.exec_module(package)  # the real gguf/__init__.py, in this module object
                    except BaseException:  # as a failed 'import gguf' does, the next lookup shows the error again
                        state["whole"] = False
                        raise
                    if name in package.__dict__:
                        return package.__dict__[name]
            raise AttributeError(f"module 'gguf' has no attribute {name!r}")

        package.__getattr__ = __getattr__  # type: ignore[method-assign]
        sys.modules.setdefault("gguf", package)  # a plain 'import gguf' another thread finished meanwhile stays


def _bind_public(package: ModuleType, module: ModuleType) -> None:
    """What ``from .module import *`` binds in the package (no ``__all__`` in gguf-py: every public name)."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        setattr(package, name, getattr(module, name))
