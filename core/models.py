"""Find a model on this machine: ``demo``, a local directory, or a hub id in the local HF cache.

Nothing is downloaded unless the caller allows it (and then only what is asked for): tests, the demo
and offline users never touch the network.
"""

from __future__ import annotations

from pathlib import Path

from ftwiz.core.errors import FtwizError, Location


def resolve_model(name_or_path: str, *, revision: str | None = None, allow_download: bool = False) -> Path:
    """A local directory holding config.json for ``name_or_path``."""
    if name_or_path == "demo":
        from ftwiz.core.tiny import ensure_demo_base_model

        return ensure_demo_base_model()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FtwizError(f"{path} has no config.json, so it is not a Hugging Face model folder",
                             fix="point at the folder that contains config.json and *.safetensors")
        return path.resolve()
    if path.suffix == ".json" and path.is_file():
        return path.parent.resolve()
    if path.is_file():  # a dataset, a GGUF: "model not found" would send the user looking for a missing file
        gguf = path.suffix.lower() == ".gguf"
        raise FtwizError(f"{path} is {'a GGUF file, already exported' if gguf else 'a file'}, not a Hugging Face "
                         "model folder", where=Location(file=path),
                         fix="chat with it, serve or register it (`ftwiz chat FILE.gguf`); to export again, give "
                             "the run or model folder it came from" if gguf else
                             "give the model's folder (with config.json and *.safetensors), a hub id like "
                             "Qwen/Qwen2.5-0.5B-Instruct, or 'demo'")
    if name_or_path.count("/") != 1 or path.exists() or name_or_path.startswith((".", "/", "~")):  # a path
        raise FtwizError(f"model not found: {name_or_path}",
                         fix="give a local model folder, a hub id like Qwen/Qwen2.5-0.5B-Instruct, or 'demo'")
    return _from_hf_cache(name_or_path, revision, allow_download)


def _from_hf_cache(repo_id: str, revision: str | None, allow_download: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except LocalEntryNotFoundError:
        if not allow_download:
            raise FtwizError(
                f"{repo_id} is not in the local Hugging Face cache",
                fix=f"download it with `ftwiz pull {repo_id}` (or add --download to train/plan), "
                    "or pass a local folder",
            ) from None
    except Exception as exc:  # a malformed id or cache entry
        raise FtwizError(f"cannot look up {repo_id} in the Hugging Face cache: {exc}",
                         fix="check the model id, or pass a local folder") from None
    return Path(snapshot_download(repo_id, revision=revision,
                                  allow_patterns=["*.json", "*.safetensors", "tokenizer.model", "*.jinja", "*.txt"]))


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model",
                   "vocab.txt")


def load_tokenizer(model_dir: Path, recipe):
    """The tokenizer of ``model_dir`` as training loads it (``recipe.trust_remote_code``; EOS as pad when the
    model has no pad token), so data checks count the tokens training will see."""
    # The submodule, not `from transformers import AutoTokenizer`: transformers resolves its lazy top-level
    # names without a lock, and two wizard workers asking at once got "cannot import name 'AutoTokenizer'".
    # A real submodule import is serialised by Python's import lock.
    from transformers.models.auto.tokenization_auto import AutoTokenizer

    if Path(model_dir).is_dir() and not any((Path(model_dir) / name).is_file() for name in TOKENIZER_FILES):
        # transformers then builds a one-token tokenizer, and "this tokenizer has no chat template" followed
        raise FtwizError(f"{model_dir} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}...)",
                         where=Location(file=model_dir),
                         fix="copy the base model's tokenizer files into it (AutoTokenizer.save_pretrained(dir))")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=recipe.trust_remote_code)
    if tokenizer.pad_token is None:
        # Padding is masked out of the loss; reusing EOS as pad is the usual, harmless choice.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
