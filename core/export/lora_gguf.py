"""A LoRA adapter as a GGUF LoRA adapter (Ollama's ``ADAPTER``, llama.cpp's ``--lora``), no merge needed.

Layout facts from llama.cpp's adapter loader: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``; for each adapted base tensor ``<gguf name>.lora_a`` with ggml shape [in, r]
(numpy (r, in), peft's lora_A) and ``<gguf name>.lora_b`` with ggml shape [r, out] (numpy (out, r),
peft's lora_B). llama.cpp applies ``alpha / r * B @ A``. For llama-architecture bases the rows of lora_B
of q/k are permuted like the base's q/k rows (lora_A's columns are inputs and stay as they are).
"""

from __future__ import annotations

import math
from pathlib import Path

from ftwiz.core.atomic import atomic_path
from ftwiz.core.errors import FtwizError, Location


def _gguf_tensors(adapter_dir: str | Path, base_dir: str | Path | None):
    """(adapter folder, base folder, params, alpha, [(GGUF tensor name, F32 array)]) for the adapter, or
    FtwizError naming what a GGUF LoRA adapter cannot carry (DoRA, retrained modules or rows, mixed scales, a
    module with no GGUF counterpart), before anything is written."""
    import numpy as np
    import torch
    from ftwiz.core.export.adapter import load_adapter
    from ftwiz.core.export.arch import model_params, text_tensor_name
    from ftwiz.core.export.convert import permute_rotate_half
    from ftwiz.core.export.merge import resolve_adapter_and_base
    from ftwiz.core.export.placement import arch_enum
    from ftwiz.core.export.tensor_names import BlockNameMap

    adapter_dir, base = resolve_adapter_and_base(adapter_dir, base_dir)
    adapter = load_adapter(adapter_dir)
    params = model_params(base)
    cfg = adapter.config
    where = Location(file=adapter_dir / "adapter_config.json")
    if adapter.use_dora:
        raise FtwizError("DoRA adapters cannot be used as GGUF adapters (llama.cpp applies plain LoRA)",
                         where=where, fix="merge instead: ftwiz export RUN (merges, then converts)")
    if adapter.replaced or adapter.rows:
        retrained = ", ".join(sorted({*adapter.replaced, *adapter.rows}))
        raise FtwizError(f"the adapter retrains whole modules or token rows ({retrained}), which a GGUF LoRA "
                         "adapter cannot carry", where=where, fix="merge instead: ftwiz export RUN")
    scales = {round(m.scale, 9) for m in adapter.modules.values()}
    ranks = {m.rank for m in adapter.modules.values()}
    if len(scales) != 1 or len(ranks) != 1:
        raise FtwizError("rank_pattern/alpha_pattern give modules different scales; a GGUF adapter has one alpha",
                         where=where, fix="merge instead: ftwiz export RUN")
    rank = ranks.pop()
    # llama.cpp scales by alpha / r; rsLoRA's alpha / sqrt(r) is expressed through an adjusted alpha.
    alpha = float(cfg.get("lora_alpha", rank)) * (math.sqrt(rank) if cfg.get("use_rslora") else 1.0)
    tmap = BlockNameMap(arch_enum(params.info.gguf_arch), params.num_layers)
    tensors = []
    for module, lora in sorted(adapter.modules.items()):
        if lora.embedding:
            raise FtwizError(f"LoRA on the embedding ({module}) is not supported in GGUF adapters",
                             where=where, fix="merge instead: ftwiz export RUN")
        text_name = text_tensor_name(f"{module}.weight")
        name = tmap.get_name(text_name, try_suffixes=(".weight",)) if text_name else None
        if name is None:
            raise FtwizError(f"adapted module {module} has no GGUF counterpart", where=where,
                             fix="merge instead: ftwiz export RUN")
        b = lora.b.to(torch.float32)
        if params.info.permute_qk and module.endswith("q_proj"):
            b = permute_rotate_half(b, params.num_heads)
        elif params.info.permute_qk and module.endswith("k_proj"):
            b = permute_rotate_half(b, params.num_kv_heads)
        base_name = name.removesuffix(".weight")
        tensors.append((f"{base_name}.weight.lora_a", np.ascontiguousarray(lora.a.to(torch.float32).numpy())))
        tensors.append((f"{base_name}.weight.lora_b", np.ascontiguousarray(b.numpy())))
    return adapter_dir, base, params, alpha, tensors


def check_adapter_gguf(adapter_dir: str | Path, *, base_dir: str | Path | None = None) -> tuple[Path, Path, int]:
    """(adapter folder, base folder, bytes of the F32 GGUF adapter) when ``--adapter-only`` can write it;
    FtwizError with the reason and the fix otherwise (what :func:`convert_adapter_to_gguf` would raise)."""
    adapter_dir, base, _, _, tensors = _gguf_tensors(adapter_dir, base_dir)
    return adapter_dir, base, sum(array.nbytes for _, array in tensors)


def convert_adapter_to_gguf(adapter_dir: str | Path, out_file: str | Path, *, base_dir: str | Path | None = None,
                            overwrite: bool = False) -> Path:
    """Write the adapter in ``adapter_dir`` as an F32 GGUF LoRA adapter at ``out_file``."""
    import gguf
    from ftwiz.core.trained_context import add_keys, run_context_keys, run_of_model_folder

    adapter_dir, base, params, alpha, tensors = _gguf_tensors(adapter_dir, base_dir)
    out_file = Path(out_file)
    needed = sum(array.nbytes for _, array in tensors)  # written as F32
    with atomic_path(out_file, overwrite=overwrite, needed=needed, what=f"the adapter GGUF {out_file.name}") as tmp:
        writer = gguf.GGUFWriter(tmp, params.info.gguf_arch)
        try:
            writer.add_type("adapter")
            writer.add_string("adapter.type", "lora")
            writer.add_float32("adapter.lora.alpha", alpha)
            writer.add_name(f"{base.name}-lora")
            # the run's system prompt and thinking choice (core/trained_context.py): the adapter was trained with
            # them, so register --adapter prompts it as trained wherever the file goes
            run = run_of_model_folder(adapter_dir)
            add_keys(writer, run_context_keys(run) if run is not None else {})
            for name, array in tensors:
                writer.add_tensor(name, array)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return out_file
