"""Where each checkpoint tensor goes in the GGUF, decided from the shard headers alone.

The converter plans its output from this (:func:`ftwiz.core.export.convert.plan_tensors` adds types and byte
sizes), and the export preflight (``ftwiz export --check``, the check train and plan run before training) asks
the same question without importing the converter, so a checkpoint the export would refuse (a tensor with no
GGUF counterpart, 4/8-bit weights, no head) is refused by the check too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.arch import IGNORED_SUFFIXES, ModelParams, text_tensor_name
from ftwiz.core.export.tensor_names import BlockNameMap
from ftwiz.core.export.tensors import TensorRef, list_tensors
from ftwiz.core.export.tied_head import tied_head_name


@dataclass(frozen=True)
class Placed:
    """One checkpoint tensor the GGUF holds: its ref, its text-model HF name (as written) and its GGUF name."""

    ref: TensorRef
    hf_name: str
    gguf_name: str


def arch_enum(name: str):
    """gguf-py's MODEL_ARCH member for the GGUF architecture ``name``."""
    import gguf

    for key, value in gguf.MODEL_ARCH_NAMES.items():
        if value == name:
            return key
    raise FtwizError(f"the installed gguf package does not know architecture '{name}'",
                     fix="upgrade the gguf package (pip install -U gguf)")


def place_tensors(model_dir: Path, params: ModelParams) -> list[Placed]:
    """Every tensor the GGUF gets, in checkpoint order; FtwizError for one it cannot hold, or a missing head."""
    tmap = BlockNameMap(arch_enum(params.info.gguf_arch), params.num_layers)
    refs = [(ref, name) for ref in list_tensors(model_dir) if (name := text_tensor_name(ref.name)) is not None]
    names = {name for _, name in refs}
    head_as = tied_head_name({name: ref for ref, name in refs}) if params.tied else None
    placed: list[Placed] = []
    for ref, hf_name in refs:
        if hf_name.endswith(IGNORED_SUFFIXES):
            continue
        if hf_name == "lm_head.weight" and params.tied:
            if head_as is None:
                continue  # tied: llama.cpp reuses token_embd when output.weight is absent
            hf_name = head_as  # as transformers loads it: untied, or the only copy (tied_head.py)
        if ref.dtype not in ("F32", "F16", "BF16"):
            raise FtwizError(f"tensor {ref.name} is stored as {ref.dtype}, not a 16/32-bit float",
                             where=Location(file=ref.file, field=ref.name),
                             fix="export the 16-bit merged model (ftwiz merge), not a 4/8-bit quantized one")
        gguf_name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise FtwizError(f"tensor {ref.name} has no GGUF counterpart for {params.hf_arch}",
                             where=Location(file=ref.file, field=ref.name),
                             fix="this checkpoint has extra weights ftwiz cannot place; report the model id")
        placed.append(Placed(ref, hf_name, gguf_name))
    if not params.tied and "lm_head.weight" not in names:
        if "embed_tokens.weight" in names:  # no 'model.' prefix: the body alone, saved without its head
            raise FtwizError("the checkpoint has no lm_head.weight and its tensors lack the 'model.' prefix "
                             "(embed_tokens.weight, layers.0...): it holds the model without its language-model "
                             "head, saved from AutoModel or model.model", where=Location(file=model_dir),
                             fix="save the whole model again: AutoModelForCausalLM...save_pretrained(folder)")
        raise FtwizError("config.json says embeddings are not tied, but lm_head.weight is missing",
                         where=Location(file=model_dir / "config.json", field="tie_word_embeddings"),
                         fix="set tie_word_embeddings to true if the model shares them, or restore lm_head")
    return placed
