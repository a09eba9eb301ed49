"""What a hub repo holds, and which of its files training and export need.

Only top-level files are taken (Llama repos keep Meta's original ``.pth`` checkpoint under ``original/``),
weights only as safetensors: a pickled ``.bin`` can run code when loaded, so a repo with nothing else is
refused with the reason rather than downloaded.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.errors import FtwizError

# Small files transformers, the chat template and the GGUF converter read (tokenizer.model: SentencePiece).
SMALL_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
               "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt",
               "added_tokens.json", "chat_template.jinja", "chat_template.json")
INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_SHARD = re.compile(r"^model-\d+-of-\d+\.safetensors$")


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int | None      # bytes, from the hub's metadata (None when the hub did not say)
    sha256: str | None = None  # LFS files: the content hash, checked after a resumed download


@dataclass
class RepoListing:
    """A repo at one commit: what ``model_info(files_metadata=True)`` says about it."""

    repo_id: str
    revision: str          # what the user asked for (a branch, tag or commit)
    commit: str            # the commit it resolved to: what gets pinned
    files: list[HubFile]
    gated: bool = False
    licence: str | None = None
    endpoint: str = ""

    def get(self, name: str) -> HubFile | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def url(self) -> str:
        return f"{self.endpoint}/{self.repo_id}"


@dataclass
class Selection:
    """The files to download, and what was left out (so the report can say why a repo looks smaller)."""

    files: list[HubFile]
    skipped: list[HubFile] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


def hub_endpoint() -> str:
    """HF_ENDPOINT as huggingface-hub reads it (a mirror such as https://hf-mirror.com), read now."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def fetch_listing(repo_id: str, revision: str | None = None, token: str | None = None) -> RepoListing:
    """The repo's files with sizes; hub errors become FtwizErrors (see :mod:`.errors`)."""
    from ftwiz.core.hub.errors import hub_error
    from huggingface_hub import HfApi

    endpoint = hub_endpoint()
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:  # every hub failure is translated; an unknown one keeps its message
        raise hub_error(exc, repo_id, revision) from None
    files = [HubFile(s.rfilename, s.lfs.size if s.lfs else s.size, s.lfs.sha256 if s.lfs else None)
             for s in info.siblings or []]
    card = info.card_data.to_dict() if info.card_data is not None else {}
    licence = card.get("license_name") or card.get("license")
    return RepoListing(repo_id, revision or "main", info.sha or "", files, gated=bool(info.gated),
                       licence=str(licence) if licence else None, endpoint=endpoint)


def select_files(listing: RepoListing, index_path: Path | None = None) -> Selection:
    """The files ftwiz needs from ``listing``; ``index_path`` (the downloaded index) names the shards.

    Raises FtwizError when the repo has no safetensors weights (pickled only, GGUF only, or none).
    """
    top = [f for f in listing.files if "/" not in f.name]
    wanted = {name for name in SMALL_FILES if listing.get(name)}
    shards: set[str] = set()
    if index_path is not None:
        try:
            shards = set(json.loads(index_path.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise FtwizError(f"{listing.repo_id}: unreadable {INDEX} ({exc})",
                             fix="try again (a download may have been cut), or report it to the repo's authors") \
                from None
    elif listing.get("model.safetensors"):
        shards = {"model.safetensors"}
    else:  # no index: the standard shard names, never Mistral's duplicate consolidated.safetensors
        shards = {f.name for f in top if _SHARD.match(f.name)}
    if not shards:
        raise _no_weights(listing, top)
    missing = sorted(s for s in shards if not listing.get(s))
    if missing:
        raise FtwizError(f"{listing.repo_id}: {INDEX} names {', '.join(missing)}, which the repo does not have",
                         fix="pick another revision (--revision) or report it to the repo's authors")
    wanted |= shards
    chosen = [f for f in listing.files if f.name in wanted]
    return Selection(chosen, [f for f in listing.files if f.name not in wanted])


def _no_weights(listing: RepoListing, top: list[HubFile]) -> FtwizError:
    pickled = [f.name for f in top if f.name.endswith(PICKLE_SUFFIXES)]
    if pickled:
        return FtwizError(
            f"{listing.repo_id} has only pickled weights ({', '.join(pickled[:3])}): loading a pickle can run "
            "any code its author put in it, so ftwiz loads safetensors only",
            fix="use a repo of the same model with *.safetensors (often a safetensors-convert PR: "
                "--revision refs/pr/N), or convert it on a machine you trust with safetensors' convert script")
    if any(f.name.endswith(".gguf") for f in listing.files):
        return FtwizError(f"{listing.repo_id} holds GGUF files only (for llama.cpp/Ollama), not the Hugging Face "
                          "weights fine-tuning needs",
                          fix="pull the original model (the repo card's base_model), e.g. without '-GGUF' in the name")
    return FtwizError(f"{listing.repo_id} has no model weights (*.safetensors) at its top level",
                      fix="check the id: it may be a dataset, an adapter or a collection, not a base model")
