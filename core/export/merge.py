"""Merge a LoRA/DoRA adapter into its 16-bit base model, one tensor at a time.

    python -c "from ftwiz.core.export.merge import merge_adapter; merge_adapter('runs/x/adapter', 'merged')"

Why streamed: loading the base through transformers and calling peft's ``merge_and_unload`` holds the
whole model (often twice, while saving), so a user whose 8B run just finished on a 16 GB machine runs
out of RAM at the last step. Here each base tensor is read, patched with ``W += scale * B @ A`` in float32
(DoRA: then each row rescaled to its learned magnitude), cast back to the base's dtype and written
straight into an output shard, so resident memory is about one tensor.

QLoRA adapters are merged into the 16-bit base on disk (the weights QLoRA quantized on the fly), never
into 4-bit weights: that rounds the small LoRA update away (peft#2321, transformers#31293).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ftwiz.core.adapter_config import adapter_base_model, is_adapter_dir
from ftwiz.core.atomic import atomic_dir
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.export.adapter import Adapter, load_adapter, merged_weight
from ftwiz.core.export.adapter_names import rename_to_checkpoint
from ftwiz.core.export.tensors import INDEX_NAME, StreamingSafetensorsWriter, TensorRef, list_tensors
from ftwiz.core.model_config import read_config
from ftwiz.core.pause import pause_point

Progress = Callable[[int, int, str], None]

# Files beside the weights that a merged model needs to be loadable and chat correctly.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json")
MODEL_FILES = ("config.json", "generation_config.json")


def resolve_adapter_and_base(source: str | Path, base_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(adapter dir, base model dir) for a run directory/name or an adapter folder."""
    from ftwiz.core.models import resolve_model
    from ftwiz.core.rundir import RunDir

    source_path = Path(source)
    base_hint: str | None = str(base_dir) if base_dir else None
    if is_adapter_dir(source_path):
        adapter_dir = source_path
        card = source_path.parent / "run_card.json"
    else:
        try:
            run = RunDir.resolve(source)
        except FtwizError:
            raise FtwizError(f"'{source}' is neither a LoRA adapter folder (no adapter_config.json) nor an ftwiz run",
                             fix="give a run name or directory, or the folder peft saved the adapter to") from None
        if run.model.is_dir() and not run.adapter.is_dir():
            raise FtwizError(f"run '{run.name}' is a full fine-tune: there is no adapter to merge",
                             where=Location(file=run.model), fix=f"export it directly: ftwiz export {run.root}")
        adapter_dir = run.adapter
        card = run.run_card
        if not adapter_dir.is_dir():
            raise FtwizError(f"run '{run.name}' has no final adapter yet", where=Location(file=adapter_dir),
                             fix="wait for training to finish, or merge a checkpoint folder directly")
    if base_hint is None and card.is_file():
        base_hint = RunDir(card.parent).read_json(card).get("base_model")
    if base_hint is None:
        base_hint = adapter_base_model(adapter_dir)
    if not base_hint:
        raise FtwizError("cannot tell which base model this adapter belongs to",
                         where=Location(file=adapter_dir / "adapter_config.json", field="base_model_name_or_path"),
                         fix="pass the base model folder with --base")
    try:
        return adapter_dir, resolve_model(base_hint)
    except FtwizError as exc:
        unquantized = _PREQUANTIZED.sub("", base_hint)
        if unquantized == base_hint or base_dir is not None:
            raise
        # an adapter trained on a pre-quantized repo (Unsloth's '-bnb-4bit'): fetching that repo cannot help,
        # the merge refuses 4-bit weights; the 16-bit model it was made from can
        raise FtwizError(f"{exc.what}; it is a 4-bit copy of a model, and the merge needs the 16-bit original",
                         where=Location(file=adapter_dir / "adapter_config.json", field="base_model_name_or_path"),
                         fix=f"ftwiz pull {unquantized}, then merge with --base {unquantized}") from None


_PREQUANTIZED = re.compile(r"-(unsloth-)?bnb-4bit$", re.IGNORECASE)  # Unsloth's names for bitsandbytes copies


def _check_base(base: Path, config: dict) -> None:
    quant = config.get("quantization_config")
    if quant:
        method = quant.get("quant_method", "quantized")
        raise FtwizError(
            f"the base model is stored {method}-quantized; merging LoRA into 4/8-bit weights rounds the "
            "fine-tune away", where=Location(file=base / "config.json", field="quantization_config"),
            fix="merge into the original 16-bit base model (the one QLoRA quantized while training): --base DIR")


def _plan(base: Path, adapter: Adapter, config: dict) -> tuple[list[TensorRef], list[str], dict[str, str]]:
    """Base tensor refs, their output names, and which module each LoRA pair patches."""
    refs = list_tensors(base)
    by_name = {r.name: r for r in refs}
    rename_to_checkpoint(adapter, by_name)  # Gemma 3 image-text: model.language_model.* is language_model.model.*
    targets: dict[str, str] = {}
    for module in adapter.modules:
        tied_head = module == "lm_head" and config.get("tie_word_embeddings")
        if f"{module}.weight" not in by_name and not tied_head:
            raise FtwizError(f"the adapter modifies {module}, which the base model does not have",
                             where=Location(file=adapter.root / "adapter_model.safetensors"),
                             fix="merge into the base model this adapter was trained on (--base)")
        targets[f"{module}.weight"] = module
    for name in (*adapter.replaced, *adapter.rows):
        if name not in by_name and not (name == "lm_head.weight" and config.get("tie_word_embeddings")):
            raise FtwizError(f"the adapter replaces {name}, which the base model does not have",
                             where=Location(file=adapter.root / "adapter_model.safetensors"),
                             fix="merge into the base model this adapter was trained on (--base)")
    return refs, [r.name for r in refs], targets


def _written_shape(name: str, shape: tuple[int, ...], adapter: Adapter) -> tuple[int, ...]:
    """A tensor's shape in the merged model: the adapter's when it replaces the tensor (a resized vocabulary)."""
    return tuple(adapter.replaced[name].shape) if name in adapter.replaced else shape


def _resized_vocab(refs: list[TensorRef], adapter: Adapter, config: dict) -> int | None:
    """The new vocabulary size when the adapter saves the embeddings (and head) with more or fewer rows than the
    base has, as peft does after ``resize_token_embeddings`` for added tokens; None when no row count changes.
    Any other shape change is an adapter for another model: FtwizError naming the tensor."""
    vocab = config.get("vocab_size")
    resized: set[int] = set()
    for ref in refs:
        new = adapter.replaced.get(ref.name)
        if new is None or tuple(new.shape) == ref.shape:
            continue
        if len(ref.shape) != 2 or ref.shape[0] != vocab or tuple(new.shape[1:]) != ref.shape[1:]:
            raise FtwizError(f"the adapter's {ref.name} is {list(new.shape)} but the base model's is {list(ref.shape)}",
                             where=Location(file=adapter.root / "adapter_model.safetensors"),
                             fix="merge into the base model this adapter was trained on (--base)")
        resized.add(int(new.shape[0]))
    if len(resized) > 1:
        raise FtwizError(f"the adapter's embeddings and head disagree on the vocabulary size ({sorted(resized)})",
                         where=Location(file=adapter.root / "adapter_model.safetensors"),
                         fix="save the adapter again from the run")
    return resized.pop() if resized else None


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, *, base_dir: str | Path | None = None,
                  overwrite: bool = False, progress: Progress | None = None) -> Path:
    """Write base + adapter as a 16-bit safetensors model (with tokenizer and chat template) to ``out_dir``."""
    adapter_dir, base = resolve_adapter_and_base(adapter_dir, base_dir)
    out_dir = Path(out_dir)
    config = read_config(base)
    _check_base(base, config)
    adapter = load_adapter(adapter_dir)
    refs, _, targets = _plan(base, adapter, config)
    vocab = _resized_vocab(refs, adapter, config)
    fan_in_fan_out = bool(adapter.config.get("fan_in_fan_out"))
    tied = bool(config.get("tie_word_embeddings"))
    names = {r.name for r in refs}
    untie = tied and "lm_head.weight" not in names and (
        "lm_head" in adapter.modules or "lm_head.weight" in adapter.replaced)
    if untie and "model.embed_tokens.weight" not in names:
        raise FtwizError("the adapter changes lm_head of a tied model whose embeddings ftwiz cannot find",
                         fix="merge with peft's merge_and_unload instead")
    total = len(refs) + int(untie)
    done = 0
    needed = sum(r.end - r.start for r in refs) + sum(  # weights as stored, plus an untied lm_head copy
        r.end - r.start for r in refs if untie and r.name == "model.embed_tokens.weight")
    with atomic_dir(out_dir, overwrite=overwrite, needed=needed, what="the merged model") as tmp:
        weight_map: dict[str, str] = {}
        files = sorted({r.file for r in refs}, key=lambda f: f.name)
        total_size = 0
        for file in files:
            shard = [r for r in refs if r.file == file]
            extra = untie and file == files[-1]
            entries = [(r.name, r.dtype, _written_shape(r.name, r.shape, adapter)) for r in shard]
            if extra:
                emb = next(r for r in refs if r.name == "model.embed_tokens.weight")
                entries.append(("lm_head.weight", emb.dtype, _written_shape("lm_head.weight", emb.shape, adapter)))
            writer = StreamingSafetensorsWriter(tmp / file.name, entries)
            try:
                with open(file, "rb") as handle:
                    for ref in shard:
                        tensor = _merged_tensor(ref, handle, adapter, targets, fan_in_fan_out)
                        writer.write(ref.name, tensor)
                        del tensor
                        weight_map[ref.name] = file.name
                        done += 1
                        if done == 1:
                            pause_point("merge.shard")  # kill tests stop here, a shard half written
                        if progress:
                            progress(done, total, ref.name)
                if extra:
                    head_ref = TensorRef("lm_head.weight", emb.file, emb.shape, emb.dtype, emb.start, emb.end)
                    # the head is LoRA-patched, or replaced whole (modules_to_save: lm_head), or both
                    head_targets = {"lm_head.weight": "lm_head"} if "lm_head" in adapter.modules else {}
                    with open(emb.file, "rb") as handle:
                        tensor = _merged_tensor(head_ref, handle, adapter, head_targets, fan_in_fan_out)
                    writer.write("lm_head.weight", tensor)
                    weight_map["lm_head.weight"] = file.name
                    done += 1
                    if progress:
                        progress(done, total, "lm_head.weight")
                writer.finish()
            finally:
                writer.close()
            total_size += (tmp / file.name).stat().st_size
        if (base / INDEX_NAME).is_file() or len(files) > 1:
            index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2), encoding="utf-8")
        _copy_side_files(base, adapter_dir, tmp, untie, vocab)
        _write_training_template(adapter_dir, tmp)
    return out_dir


def _write_training_template(adapter_dir: Path, out: Path) -> None:
    """The merged tokenizer carries the chat template training rendered with (the run card's record),
    even when the adapter folder was saved without it or the base carries another one."""
    from ftwiz.core.chat_templates import record_of_model_dir, write_template_files

    record = record_of_model_dir(adapter_dir)
    if record is not None:
        write_template_files(out, record.template)


def _merged_tensor(ref: TensorRef, handle, adapter: Adapter, targets: dict[str, str], fan_in_fan_out: bool):
    import torch
    from ftwiz.core.export.tensors import DTYPES, read_tensor

    out_dtype = getattr(torch, DTYPES[ref.dtype][0])
    if ref.name in adapter.replaced:
        tensor = adapter.replaced[ref.name].to(out_dtype)
    else:
        tensor = read_tensor(ref, handle)
    if ref.name in adapter.rows:  # peft's trainable tokens: those rows are the trained ones (index_copy)
        indices, values = adapter.rows[ref.name]
        tensor = tensor.clone()
        tensor[torch.tensor(indices)] = values.to(out_dtype)
    module = targets.get(ref.name)
    if module is None:
        return tensor
    merged = merged_weight(tensor, adapter.modules[module], fan_in_fan_out)
    del tensor
    return merged.to(out_dtype)


def _copy_side_files(base: Path, adapter_dir: Path, out: Path, untie: bool, vocab: int | None = None) -> None:
    """config + generation config from the base; tokenizer and chat template from the adapter when saved
    there (training may have added tokens or set the template), else from the base."""
    for name in MODEL_FILES:
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    if untie or vocab is not None:
        cfg = read_config(out)
        if untie:
            cfg["tie_word_embeddings"] = False
        if vocab is not None:  # the embeddings were resized for added tokens before training
            cfg["vocab_size"] = vocab
        (out / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    for name in TOKENIZER_FILES:
        if (tokenizer_source / name).is_file():
            shutil.copy2(tokenizer_source / name, out / name)
        elif (base / name).is_file() and name in ("tokenizer.model",):
            shutil.copy2(base / name, out / name)

