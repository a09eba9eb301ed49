"""What a tied model's checkpoint really ties: transformers 5 decides from the tensors present, not the config alone.

``tie_word_embeddings: true`` normally comes with no ``lm_head.weight`` in the safetensors, and the GGUF then
has no ``output.weight`` (llama.cpp reuses ``token_embd``). Two other checkpoints exist in the wild, and
transformers (``PreTrainedModel.tie_weights`` during ``from_pretrained``) loads them differently:

- both tensors saved, with different values (a head trained apart, then saved under a tied config):
  transformers warns and does NOT tie them, so the model computes its logits with ``lm_head.weight``;
- only ``lm_head.weight`` saved: transformers ties the embeddings to the head it found.

Skipping the head in the first case serves different logits; in the second it wrote a GGUF without
``token_embd.weight`` that llama.cpp cannot load.
"""

from __future__ import annotations

import os

from ftwiz.core.export.tensors import TensorRef, read_tensor

EMBED = "model.embed_tokens.weight"
HEAD = "lm_head.weight"
_CHUNK = 16 << 20  # bytes compared at a time: memory stays bounded for a 150k-row embedding


def tied_head_name(refs: dict[str, TensorRef]) -> str | None:
    """For a model whose config ties the embeddings: the name ``lm_head.weight`` is written under (``HEAD``:
    as the output matrix; ``EMBED``: as the embeddings, the checkpoint having no other), or None when it is
    absent or the same numbers as the embeddings (skipped, as llama.cpp expects of a tied model).
    ``refs`` maps the checkpoint's text-model tensor names to their refs."""
    head = refs.get(HEAD)
    if head is None:
        return None
    embed = refs.get(EMBED)
    if embed is None:
        return EMBED
    return None if _same_values(head, embed) else HEAD


def _same_values(a: TensorRef, b: TensorRef) -> bool:
    """Exact equality (transformers compares with ``torch.equal``): byte by byte when stored alike."""
    if a.shape != b.shape:
        return False
    if a.dtype != b.dtype:
        import torch

        return bool(torch.equal(read_tensor(a).float(), read_tensor(b).float()))
    with open(a.file, "rb") as fa, open(b.file, "rb") as fb:
        for offset in range(0, a.nbytes, _CHUNK):
            size = min(_CHUNK, a.nbytes - offset)
            if os.pread(fa.fileno(), size, a.start + offset) != os.pread(fb.fileno(), size, b.start + offset):
                return False
    return True
