"""A tiny GGUF written with gguf-py's own GGUFWriter: the metadata serve and chat read (context_length, the
``ftwiz.*`` keys an export writes, a 3-token vocabulary, a chat template) and one small tensor; no model to run.

Tests that only need what ftwiz *would* load or start (the server's command line, chat's llama.cpp arguments, a
refusal before loading) use it instead of converting a tiny model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ftwiz.core.trained_context import TrainedContext, add_keys

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}<|assistant|>"


def write_gguf(path: Path, *, context_length: int | None, cutoff_len: int | None = None) -> Path:
    """A tiny llama-architecture GGUF: metadata (a 3-token vocabulary, a chat template) and one small tensor."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    if context_length is not None:
        writer.add_context_length(context_length)
    if cutoff_len is not None:  # as `ftwiz export` of a run writes it
        add_keys(writer, TrainedContext("my-run", None, None, cutoff_len).gguf_keys())
    writer.add_tokenizer_model("llama")
    writer.add_token_list(["<s>", "</s>", "a"])
    writer.add_token_types([3, 3, 1])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_chat_template(TEMPLATE)
    writer.add_tensor("token_embd.weight", np.zeros((3, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def read_context_length(path: Path) -> int:
    """``<arch>.context_length`` of a GGUF as gguf-py's own reader reads it (the oracle for the window chosen)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    return int(reader.fields[f"{arch}.context_length"].parts[-1][0])
