"""Versions of ftwiz and the stack it drives, read from package metadata (no heavy imports)."""

from __future__ import annotations

from importlib import metadata

STACK = (
    "torch", "transformers", "trl", "peft", "bitsandbytes", "datasets", "accelerate", "gguf",
    "llama_cpp_python", "textual", "pydantic",
)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def stack_versions() -> dict[str, str]:
    """``{"ftwiz": "0.1.0", "torch": "2.13.0+cpu", ...}``; missing packages say "not installed"."""
    versions = {"ftwiz": package_version("ftwiz") or "0.0.0+source"}
    for name in STACK:
        versions[name.replace("_", "-")] = package_version(name) or "not installed"
    return versions
