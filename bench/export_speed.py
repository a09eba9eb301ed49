"""Seconds, peak RSS and MB/s of F16 and Q8_0 GGUF export against a plain copy of the safetensors.

    .venv/bin/python bench/export_speed.py [--layers 20] [--hidden 1024] [--intermediate 4096]
    .venv/bin/python bench/export_speed.py --real-vocab   # whole commands vs cp and llama.cpp's converter

The model is a random-init Llama of about 300M parameters stored in bfloat16 (as models ship). A plain
file copy of the same bytes is the I/O limit; F16 export should reach at least half of it (target
>= 0.5x). Each export runs in a child process that reports its own peak RSS (VmHWM) and the seconds of
the conversion call; the copy is timed the same way (one call, page cache warm, earlier writes flushed).
Python's start-up and imports are a fixed cost of a few tenths of a second, printed separately and in the
whole-command figure, since they do not grow with the model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_rss import peak_from, report_peak  # noqa: E402


def child(model: str, out: str, out_type: str) -> None:
    # as `ftwiz export` runs it (core/cli VERB_ENVIRONMENT): numpy's idle OpenBLAS threads otherwise spin on
    # the cores the conversion needs (measured 1.2-1.9 s instead of 0.6 s for this call inside the bench)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import gguf  # noqa: F401  (imports are the fixed start-up cost, timed separately)
    import numpy  # noqa: F401
    from ftwiz.core.export.convert import convert_to_gguf

    start = time.perf_counter()
    convert_to_gguf(model, out, out_type)
    print(f"CONVERT_S {time.perf_counter() - start}", flush=True)


def settle() -> None:
    """Flush earlier runs' dirty pages first, so their write-back does not land inside the next timing."""
    os.sync()
    time.sleep(0.5)


def timed_child(model: Path, out: Path, out_type: str) -> tuple[float, float, int]:
    """(seconds of the conversion call inside the child, seconds of the whole command, peak RSS)."""
    settle()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(model), str(out), out_type],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{out_type} export failed:\n{proc.stderr[-2000:]}")
    wall = time.perf_counter() - start
    inner = float(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("CONVERT_S")))
    return inner, wall, peak_from(proc.stdout)


def import_time() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, gguf; import ftwiz.core.export.convert"], check=True)
    return time.perf_counter() - start


def build(work: Path, layers: int, hidden: int, intermediate: int, dtype: str = "bfloat16") -> Path:
    import torch
    from ftwiz.core.tiny import build_tiny_model
    from transformers import AutoConfig, AutoModelForCausalLM

    small = build_tiny_model(work / "small", arch="llama", vocab_size=512)
    config = AutoConfig.from_pretrained(small)
    config.update({"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 16,
                   "num_key_value_heads": 4, "head_dim": hidden // 16, "intermediate_size": intermediate})
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    out = work / "model"
    model.save_pretrained(out)
    for f in small.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens", "generation")):
            shutil.copy(f, out / f.name)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        report_peak()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=4096)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"],
                        help="how the source model is stored (bfloat16 needs a conversion for F16 output)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for copy and F16 (noisy machines)")
    parser.add_argument("--real-vocab", action="store_true",
                        help="Qwen2.5-0.5B shape with the real Qwen2 tokenizer, whole commands (bench/export_real_vocab.py)")
    parser.add_argument("--llamacpp-dir", help="with --real-vocab: keep llama.cpp's converter here (fetched once)")
    parser.add_argument("--no-llamacpp", action="store_true", help="with --real-vocab: skip llama.cpp's converter")
    args = parser.parse_args()
    if args.real_vocab:
        from export_real_vocab import main as real_vocab

        real_vocab(args.repeat, args.llamacpp_dir, with_llamacpp=not args.no_llamacpp)
        return
    with tempfile.TemporaryDirectory(prefix="ftwiz-export-bench-", dir=os.environ.get("FTWIZ_BENCH_DIR")) as tmp:
        work = Path(tmp)
        model = build(work, args.layers, args.hidden, args.intermediate, args.dtype)
        files = sorted(model.glob("*.safetensors"))
        size = sum(f.stat().st_size for f in files)
        from ftwiz.core.export.preflight import _count_parameters

        params = _count_parameters(model)
        for f in files:  # warm the page cache once so copy and export read from the same place
            with open(f, "rb") as h:
                while h.read(1 << 24):
                    pass
        copy_s, startup = [], import_time()
        results: dict[str, list[tuple[float, float, int, int]]] = {"F16": [], "Q8_0": []}
        for rep in range(args.repeat):  # interleaved, best of N: other load on the machine hits both alike
            settle()
            start = time.perf_counter()
            for f in files:
                shutil.copyfile(f, work / f"copy-{f.name}")
            copy_s.append(time.perf_counter() - start)
            for f in files:
                (work / f"copy-{f.name}").unlink()
            for out_type in ("F16", "Q8_0") if rep == 0 else ("F16",):
                out = work / f"m-{out_type}.gguf"
                inner, wall, rss = timed_child(model, out, out_type)
                results[out_type].append((inner, wall, rss, out.stat().st_size))
                out.unlink()
    mb = 1e6
    best_copy = min(copy_s)
    copy_speed = size / mb / best_copy
    print(f"model: {params / 1e6:.0f} M parameters, {size / mb:.0f} MB of {args.dtype} safetensors")
    print(f"plain copy:  {best_copy:6.2f} s  {copy_speed:7.0f} MB/s (best of {len(copy_s)})")
    print(f"python start + imports: {startup:.2f} s (a fixed cost, in the 'whole command' column only)")
    for out_type, runs in results.items():
        inner, wall, rss, out_size = min(runs)
        speed, whole = size / mb / inner, size / mb / wall
        print(f"{out_type:5s} export: {inner:6.2f} s  {speed:7.0f} MB/s  {speed / copy_speed:.2f}x copy speed   "
              f"whole command {wall:5.2f} s = {whole / copy_speed:.2f}x   peak RSS {rss / 2**20:5.0f} MiB  "
              f"output {out_size / mb:.0f} MB  (best of {len(runs)})")
    print("target: F16 conversion >= 0.50x copy speed")


if __name__ == "__main__":
    main()
