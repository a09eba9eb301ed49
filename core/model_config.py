"""The language model's settings from a config.json, as the planner and the GGUF converter both need them.

Why one place: image-text checkpoints (Gemma 3 4B and larger) nest the language model's settings under
``text_config``, and checkpoints saved by transformers 4.x store that sub-config as a diff against its
defaults: google/gemma-3-4b-it has no vocab_size, head_dim or rope_theta there. Reading it raw makes a
planner guess a 32k vocabulary (so logits memory 8x too small: an out-of-memory it said would fit) and a
converter guess hidden/heads for head_dim. transformers' own config class fills the defaults in.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

log = logging.getLogger(__name__)

# outer model_type -> the model_type of its text_config, for sub-configs that do not name theirs
TEXT_MODEL_TYPES = {"gemma3": "gemma3_text"}


def language_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` itself, or for an image-text model its ``text_config`` completed with transformers' defaults
    (``tie_word_embeddings`` taken from the outer config, where those models keep it)."""
    text = config.get("text_config")
    if not isinstance(text, dict):
        return config
    model_type = text.get("model_type") or TEXT_MODEL_TYPES.get(str(config.get("model_type")))
    completed = dict(text)
    if model_type:
        try:
            # the submodule: safe when wizard workers import transformers at the same time (core/models.py)
            from transformers.models.auto.configuration_auto import AutoConfig

            settings = {k: v for k, v in text.items() if k != "model_type"}
            completed = AutoConfig.for_model(model_type, **settings).to_dict()
        except Exception as exc:  # an unknown model type or an older transformers: use what is there
            log.warning("could not fill %s defaults into text_config (%s); using the keys present", model_type, exc)
    if "tie_word_embeddings" in config:
        completed["tie_word_embeddings"] = config["tie_word_embeddings"]
    return completed


def read_config(model_dir: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model folder (or of that file itself), exactly as saved.

    Raises FtwizError naming the file: missing (not a Hugging Face model folder), unreadable, or not JSON
    (with the line). Callers that need the language model's settings pass the result to
    :func:`language_config`.
    """
    path = Path(model_dir)
    if not path.is_file() and path.name != "config.json":
        path = path / "config.json"
    elif path.is_file() and path.suffix != ".json":  # a dataset or a GGUF given where the model goes
        raise FtwizError("a file, not a model: give the model's folder (with config.json) or "
                         "its config.json", where=Location(file=path),
                         fix="e.g. a Hugging Face folder, a hub id like Qwen/Qwen2.5-0.5B-Instruct, or 'demo' "
                             "(a dataset goes in the recipe's dataset:)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise FtwizError(f"config.json is not UTF-8 text (byte {exc.start})", where=Location(file=path),
                         fix="restore the file from the original model download") from None
    except FileNotFoundError:
        raise FtwizError(f"{path.parent} has no config.json, so it is not a Hugging Face model folder",
                         where=Location(file=path),
                         fix="point at the folder that contains config.json and *.safetensors") from None
    except json.JSONDecodeError as exc:
        raise FtwizError(f"config.json is not valid JSON: {exc.msg}", where=Location(file=path, line=exc.lineno),
                         fix="restore the file from the original model download") from None
    except OSError as exc:
        raise FtwizError(f"cannot read config.json: {exc.strerror or exc}", where=Location(file=path),
                         fix="check the file's permissions") from None


def read_language_config(model_dir: str | Path) -> dict[str, Any]:
    """:func:`language_config` of the folder's ``config.json`` (Gemma 3's ``text_config`` completed)."""
    return language_config(read_config(model_dir))
