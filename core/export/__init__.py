"""Merge, GGUF conversion, quantization and verification.

gguf-py is registered here, before any export module imports it, without the modules an export never uses
(see :mod:`ftwiz.core.export.gguf_package`).
"""

from ftwiz.core.export.gguf_package import install as _install_gguf

_install_gguf()
