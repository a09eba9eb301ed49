"""The model's recommended sampling settings, from ``generation_config.json`` into ``general.sampling.*``.

llama.cpp's tools (llama-server, llama-cli) start from these keys when the user sets no sampling flag of
their own, and llama.cpp's converter writes them (gguf-py's ``Metadata.load``: ``temperature`` becomes
``general.sampling.temp``, ``repetition_penalty`` stands in for ``penalty_repeat``). Without them a model
whose authors recommend, say, temperature 0.6 and top_k 20 (Qwen3) is sampled with llama.cpp's defaults.
Ollama and llama-cpp-python do not read them; ``ftwiz chat``/``serve`` pass their own settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

# generation_config.json key(s), first present wins -> (gguf-py writer method suffix, value type)
_KEYS: tuple[tuple[tuple[str, ...], str, Callable[[Any], Any]], ...] = (
    (("sequence",), "sequence", str),
    (("top_k",), "top_k", int),
    (("top_p",), "top_p", float),
    (("min_p",), "min_p", float),
    (("xtc_probability",), "xtc_probability", float),
    (("xtc_threshold",), "xtc_threshold", float),
    (("temperature",), "temp", float),
    (("penalty_last_n",), "penalty_last_n", int),
    (("penalty_repeat", "repetition_penalty"), "penalty_repeat", float),
    (("mirostat",), "mirostat", int),
    (("mirostat_tau",), "mirostat_tau", float),
    (("mirostat_eta",), "mirostat_eta", float),
)


def sampling_defaults(model_dir: Path) -> dict[str, Any]:
    """{writer suffix ("temp", "top_k", ...): value} from ``model_dir/generation_config.json``; {} without one.

    FtwizError naming the file and field for a value of the wrong type (``"top_k": "20"``); broken JSON is
    named with its line.
    """
    path = Path(model_dir) / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FtwizError(f"not valid JSON: {getattr(exc, 'msg', exc)}", where=Location(
            file=path, line=getattr(exc, "lineno", None)), fix="restore generation_config.json from the original model"
        ) from None
    if not isinstance(config, dict):
        return {}
    found: dict[str, Any] = {}
    for names, suffix, kind in _KEYS:
        name = next((n for n in names if config.get(n) is not None), None)
        if name is None:
            continue
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, str if kind is str else (int, float)) or \
                (kind is int and isinstance(value, float) and not value.is_integer()):
            raise FtwizError(f"{name} is {value!r}, not a {'text' if kind is str else 'number'}",
                             where=Location(file=path, field=name),
                             fix=f"write {name} as a {'string' if kind is str else 'number'}, or remove it")
        found[suffix] = kind(value)
    return found


def write_sampling_defaults(writer, model_dir: Path) -> dict[str, Any]:
    """Write each setting as gguf-py's ``add_sampling_<suffix>`` writes it; returns what was written."""
    found = sampling_defaults(model_dir)
    for suffix, value in found.items():
        getattr(writer, f"add_sampling_{suffix}")(value)
    return found
