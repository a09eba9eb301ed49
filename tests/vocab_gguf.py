"""A tokenizer-only GGUF for tests: the exporter's tokenizer metadata (core/export/vocab.py) and no tensors.

llama-cpp-python opens it with ``vocab_only=True`` to tokenize and render as llama.cpp serves the model.
"""

from __future__ import annotations

from pathlib import Path


def vocab_gguf(model_dir: Path, out: Path, n_vocab: int, *, arch: str = "llama", context_length: int = 4096,
               rms_eps: float = 1e-5) -> Path:
    """Write ``out`` from ``model_dir``'s tokenizer files at ``n_vocab`` rows, with small ``arch`` hyper-parameters."""
    import gguf
    from ftwiz.core.export.vocab import write_vocab

    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_context_length(context_length)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(rms_eps)
    writer.add_rope_freq_base(10000.0)
    write_vocab(writer, model_dir, n_vocab)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
