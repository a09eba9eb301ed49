"""Merge and K-quant export at the size users run out of RAM: a Llama-3.1-8B-shaped model (on demand, not CI).

    .venv/bin/python bench/scale_8b.py [--layers 32] [--work DIR] [--no-peft] [--keep]

Builds, with no download, a random bf16 model of Llama-3.1-8B's shapes (hidden 4096, 32 layers, GQA 32/8,
MLP 14336, 128,256-token embedding and untied head, llama3 rope scaling) in 2 GB safetensors shards, and a
rank-16 LoRA adapter on every linear layer (q/k/v/o/gate/up/down, non-zero B). Then times two whole
commands, each in its own process with its peak RSS from ``wait4``:

- ``ftwiz merge ADAPTER --base BASE --out MERGED``
- ``ftwiz export MERGED --quant Q4_K_M --out model.gguf`` (quantized by ggml straight from the safetensors, as
  llama.cpp's quantizer would; an F16 intermediate + llama.cpp's quantizer only without ggml's quantizer)

and, as the baseline, peft's ``merge_and_unload`` (transformers load in bf16, merge, save_pretrained) when
the machine has the RAM for it (it holds the model at least twice); otherwise it says so and skips it.
``--layers 2`` runs the same path at a smaller scale (the check that the bench itself works).
Targets (issue 21): merge and Q4_K_M export peak RSS under 3 GB each at full scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
LLAMA31_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
              "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
              "bos_token_id": 128000, "eos_token_id": 128009,
              "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 8192}}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SHARD_BYTES = 2 * 10**9


def _save_shards(tensors, out: Path, prefix: str = "model") -> None:
    """Stream (name, tensor) pairs into ~2 GB shards plus the index transformers reads."""
    from safetensors.torch import save_file

    shard: dict = {}
    names: list[list[str]] = []
    size = total = 0

    def flush() -> None:
        nonlocal shard, size
        if shard:
            save_file(shard, str(out / f"part-{len(names)}.tmp"), metadata={"format": "pt"})
            names.append(list(shard))
            shard, size = {}, 0

    for name, tensor in tensors:
        if size and size + tensor.nbytes > SHARD_BYTES:
            flush()
        shard[name] = tensor
        size += tensor.nbytes
        total += tensor.nbytes
    flush()
    weight_map = {}
    for i, shard_names in enumerate(names):
        final = f"{prefix}-{i + 1:05d}-of-{len(names):05d}.safetensors"
        (out / f"part-{i}.tmp").rename(out / final)
        weight_map.update(dict.fromkeys(shard_names, final))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / f"{prefix}.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")


def build_base(out: Path, layers: int) -> Path:
    """Random N(0, 0.02) bf16 weights of Llama-3.1-8B's shapes, one tensor in memory at a time per shard."""
    import torch
    import transformers
    from ftwiz.core.tiny import build_tiny_model

    config = transformers.LlamaConfig(**{**LLAMA31_8B, "num_hidden_layers": layers}, torch_dtype="bfloat16")
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in transformers.LlamaForCausalLM(config).state_dict().items()}
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    # drawing 8 billion normals takes ~20 min on 2 busy cores: draw 256 MB once and cut every matrix from it
    # at its own offset (the bench measures I/O and memory, which need incompressible bytes, not independence)
    pool = torch.empty(1 << 27, dtype=torch.bfloat16).normal_(0, 0.02, generator=gen)

    def matrix(shape: tuple[int, ...], offset: int) -> torch.Tensor:
        n = 1
        for d in shape:
            n *= d
        pieces, start = [], offset % pool.numel()
        while n > 0:
            take = min(n, pool.numel() - start)
            pieces.append(pool[start:start + take])
            n, start = n - take, 0
        return torch.cat(pieces).reshape(shape)

    def tensors():
        for k, (name, shape) in enumerate(shapes.items()):
            if len(shape) == 1:
                yield name, torch.ones(shape, dtype=torch.bfloat16)
            else:
                yield name, matrix(shape, k * 7_919_993)

    _save_shards(tensors(), out)
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(out)
    small = build_tiny_model(out.parent / "tokenizer-source", arch="llama", vocab_size=512)
    for f in small.iterdir():  # a small tokenizer: rows past it are padding in the GGUF
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, out / f.name)
    return out


def build_adapter(out: Path, base: Path, layers: int, rank: int = 16) -> Path:
    """A peft LoRA adapter (rank 16, alpha 32) on every linear layer, with non-zero B so merging changes W."""
    import torch
    from safetensors.torch import save_file

    cfg = LLAMA31_8B
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    dims = {"q_proj": (cfg["hidden_size"], cfg["hidden_size"]),
            "k_proj": (cfg["hidden_size"], cfg["num_key_value_heads"] * head_dim),
            "v_proj": (cfg["hidden_size"], cfg["num_key_value_heads"] * head_dim),
            "o_proj": (cfg["hidden_size"], cfg["hidden_size"]),
            "gate_proj": (cfg["hidden_size"], cfg["intermediate_size"]),
            "up_proj": (cfg["hidden_size"], cfg["intermediate_size"]),
            "down_proj": (cfg["intermediate_size"], cfg["hidden_size"])}
    gen = torch.Generator().manual_seed(1)
    tensors = {}
    for layer in range(layers):
        for module, (fan_in, fan_out) in dims.items():
            part = "self_attn" if module.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            key = f"base_model.model.model.layers.{layer}.{part}.{module}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(rank, fan_in, generator=gen) * 0.01
            tensors[f"{key}.lora_B.weight"] = torch.randn(fan_out, rank, generator=gen) * 0.01
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
              "target_modules": list(TARGETS), "bias": "none", "fan_in_fan_out": False, "use_dora": False,
              "use_rslora": False, "base_model_name_or_path": str(base)}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out


def run_command(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one whole command; stops the bench with its output if it fails."""
    from peak_rss import run_whole

    os.sync()
    wall, peak, code, output = run_whole(cmd)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{output[-3000:]}")
    return wall, peak


PEFT_CHILD = """
import sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
base, adapter, out = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(out)
"""


def available_ram() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32, help="decoder layers (32 = Llama-3.1-8B)")
    parser.add_argument("--work", default=os.environ.get("FTWIZ_BENCH_DIR"), help="folder for the ~42 GB of files")
    parser.add_argument("--no-peft", action="store_true", help="skip peft's merge_and_unload baseline")
    parser.add_argument("--keep", action="store_true", help="keep the files (printed) instead of deleting them")
    parser.add_argument("--merge-only", action="store_true", help="time the merge, skip the Q4_K_M export")
    args = parser.parse_args()
    ftwiz = str(Path(sys.executable).with_name("ftwiz"))
    work = Path(tempfile.mkdtemp(prefix="ftwiz-8b-", dir=args.work))
    try:
        per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
        from ftwiz.core.export.kquant import direct_quant_available

        # bytes: bf16 base and merged, the Q4_K_M, and the F16 intermediate where llama.cpp's quantizer makes it
        copies = 2 if direct_quant_available("Q4_K_M") else 3
        need = 1.1 * (2 * copies + 4.89 / 8) * (2 * 128256 * 4096 + args.layers * per_layer)
        free = shutil.disk_usage(work).free
        print(f"work folder {work}: {free / 1e9:.0f} GB free, this scale needs about {need / 1e9:.0f} GB")
        if free < need:
            raise SystemExit("not enough disk for this scale: free space or pass --work, or use --layers N")
        start = time.perf_counter()
        base = build_base(work / "base", args.layers)
        adapter = build_adapter(work / "adapter", base, args.layers)
        size = sum(f.stat().st_size for f in base.glob("*.safetensors"))
        print(f"built {size / 1e9:.2f} GB of bf16 shards ({args.layers} layers) and a rank-16 adapter "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        results: dict[str, tuple[float, int]] = {}

        def timed(label: str, cmd: list[str]) -> None:
            results[label] = run_command(cmd)
            wall, rss = results[label]  # printed at once: the full-scale run takes long
            print(f"{label:22s} {wall:7.1f} s   peak RSS {rss / 2**30:6.2f} GiB = {rss / size:.3f}x model", flush=True)

        timed("ftwiz merge", [ftwiz, "merge", str(adapter), "--base", str(base), "--out", str(work / "merged")])
        if not args.merge_only:
            timed("ftwiz export Q4_K_M", [ftwiz, "export", str(work / "merged"), "--quant", "Q4_K_M",
                                          "--out", str(work / "model-Q4_K_M.gguf")])
        gguf = work / "model-Q4_K_M.gguf"
        gguf_size = gguf.stat().st_size if gguf.is_file() else 0
        if not args.keep:  # with --keep the merged model stays, to export it again later
            shutil.rmtree(work / "merged")
        ram = available_ram()
        peft_note = ""
        if args.no_peft:
            peft_note = "skipped (--no-peft)"
        elif ram < 2.2 * size:  # loaded model + merged copy while saving, plus torch
            peft_note = (f"skipped: needs about {2.2 * size / 1e9:.0f} GB of RAM, {ram / 1e9:.0f} GB available "
                         "on this machine")
        else:
            timed("peft merge_and_unload", [sys.executable, "-c", PEFT_CHILD, str(base), str(adapter),
                                            str(work / "peft-merged")])
        print(f"model: Llama-3.1-8B shapes with {args.layers} layers, {size / 1e9:.2f} GB bf16; "
              f"Q4_K_M GGUF {gguf_size / 1e9:.2f} GB")
        for label, (wall, rss) in results.items():
            print(f"{label:22s} {wall:7.1f} s   peak RSS {rss / 2**30:6.2f} GiB = {rss / size:.3f}x model")
        if peft_note:
            print(f"peft merge_and_unload  {peft_note}")
        print("targets at full scale: merge and Q4_K_M export peak RSS < 3 GB")
        print(json.dumps({k: {"seconds": round(w, 1), "peak_rss_gib": round(r / 2**30, 3)}
                          for k, (w, r) in results.items()}))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
