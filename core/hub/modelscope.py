"""Pull from ModelScope (modelscope.cn), for users who cannot reach the Hugging Face Hub or a mirror.

Its client is an optional extra (``pip install 'ftwiz[modelscope]'``); the files land in ModelScope's
own cache (``MODELSCOPE_CACHE``, default ~/.cache/modelscope), so the recipe names the folder printed.
"""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.hub.listing import PICKLE_SUFFIXES, SMALL_FILES

# ModelScope's allow_patterns are fnmatch patterns over repo paths: top-level safetensors and small files.
ALLOW_PATTERNS = [*SMALL_FILES, "*.safetensors"]
IGNORE_PATTERNS = [f"*{suffix}" for suffix in PICKLE_SUFFIXES] + ["original/*", "*/*"]


def modelscope_client():
    """modelscope's snapshot_download, or a FtwizError saying how to install it."""
    try:
        from modelscope.hub.snapshot_download import snapshot_download
    except ImportError:
        raise FtwizError("--source modelscope needs ModelScope's client, which is not installed",
                         fix="pip install 'ftwiz[modelscope]' (or: pip install modelscope), "
                             "or use the Hugging Face Hub or a mirror (HF_ENDPOINT=https://hf-mirror.com)") from None
    return snapshot_download


def pull_modelscope(model_id: str, revision: str | None = None) -> Path:
    """The model's needed files into ModelScope's cache; its local folder. Safetensors only."""
    download = modelscope_client()
    try:
        folder = Path(download(model_id, revision=revision or "master", allow_patterns=ALLOW_PATTERNS,
                               ignore_patterns=IGNORE_PATTERNS))
    except Exception as exc:  # its errors are plain exceptions with readable messages
        raise FtwizError(f"ModelScope could not download {model_id}: {exc}",
                         fix="check the id on modelscope.cn (ids differ from Hugging Face's at times)") from None
    if not any(folder.glob("*.safetensors")):
        raise FtwizError(f"{model_id} on ModelScope has no *.safetensors weights (pickled weights are not loaded)",
                         fix="pick a repo with safetensors weights")
    return folder
