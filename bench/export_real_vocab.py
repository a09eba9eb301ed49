"""Whole-command export with a real vocabulary: ftwiz against ``cp`` and llama.cpp's own converter.

    .venv/bin/python bench/export_speed.py --real-vocab [--repeat 3] [--llamacpp-dir DIR]

The model is Qwen2.5-0.5B-shaped (24 layers, hidden 896, tied embeddings, 151,936 rows), random bf16
weights, carrying the real Qwen2 tokenizer from ``../shared/tokenizers/Qwen2-1.5B-Instruct-Boundless``
(saved as tokenizer.json, as transformers writes it). Timed as whole commands, each in its own process with
its peak RSS from ``wait4``: ``cp`` of the safetensors, ``ftwiz export MODEL --quant F16`` / ``Q8_0``, and
``convert_hf_to_gguf.py --outtype f16`` / ``q8_0``. The converter is taken at bench time from the
llama-cpp-python source distribution on the package index, at the installed version (``pip download``
into the temp folder; never committed). The outputs are compared tensor by tensor (name, type, shape, bytes).
Every command starts alike: each output is deleted right after its timing (deleting a 1 GB file costs ext4
0.6-1.4 s, and on this VM a freshly written 1 GB file still on disk made the next large write ~3x slower), the
model is re-read into the page cache before each (a DAMON "pageout" scheme here evicts file pages it finds
cold), every command runs with Python's bytecode cached as an installed package has it, and the load average
and each command's CPU seconds are printed: on a shared machine CPU seconds move much less than wall times.
The F16 and Q8_0 outputs of the first round are kept only until they are compared with llama.cpp's.

Each "ftwiz F16 cold" starts with an empty vocabulary cache: it is the first export of a tokenizer ftwiz has never seen
(parsed, packed and cached), "ftwiz F16" / "Q8_0" re-export it (another quant, another run of the same base
model). A model that came through ``ftwiz pull`` or ``ftwiz train`` is already warm at its first export: both
fill the cache when they finish (core/export/vocab_warm.py).

Targets (issue 21): whole F16 command >= 0.35x cp speed and >= 5x faster than the converter; the
conversion call itself >= 0.5x cp; peak RSS <= 0.25x the model's size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SHARED_QWEN = BENCH.parent.parent / "shared" / "tokenizers" / "Qwen2-1.5B-Instruct-Boundless"
QWEN25_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
              "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
              "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
              "bos_token_id": 151643, "eos_token_id": 151645}


def build_model(out: Path, layers: int | None = None) -> Path:
    """Qwen2.5-0.5B shapes, N(0, 0.02) bf16 weights written tensor by tensor, the real Qwen2 tokenizer."""
    import torch
    import transformers
    from safetensors.torch import save_file

    config = transformers.Qwen2Config(**{**QWEN25_05B, **({"num_hidden_layers": layers} if layers else {})},
                                      torch_dtype="bfloat16")
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in transformers.Qwen2ForCausalLM(config).state_dict().items()}
    shapes.pop("lm_head.weight", None)  # tied
    gen = torch.Generator().manual_seed(0)
    tensors = {k: (torch.randn(s, generator=gen) * 0.02).to(torch.bfloat16) for k, s in shapes.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    config.architectures = ["Qwen2ForCausalLM"]
    config.save_pretrained(out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(SHARED_QWEN)
    tokenizer.save_pretrained(out)
    shutil.copy(SHARED_QWEN / "generation_config.json", out / "generation_config.json")
    return out


def fetch_converter(work: Path) -> Path:
    """llama.cpp's convert_hf_to_gguf.py with its ``conversion`` package and gguf-py, from the sdist of the
    installed llama-cpp-python, extracted into ``work/llamacpp`` (reused when already there). Returns the
    script's path."""
    from importlib.metadata import version

    if (work / "llamacpp" / "convert_hf_to_gguf.py").is_file():
        return work / "llamacpp" / "convert_hf_to_gguf.py"
    wanted = version("llama-cpp-python")
    dl = work / "sdist"
    # --no-binary for this package only: ":all:" would also build its build backend from source first
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python", "-q",
                    f"llama-cpp-python=={wanted}", "-d", str(dl)], check=True)
    archive = next(dl.glob("llama_cpp_python-*.tar.gz"))
    keep = ("vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/conversion/", "vendor/llama.cpp/gguf-py/")
    dest = work / "llamacpp"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and any(k in m.name for k in keep)]
        for m in members:
            m.name = m.name.split("vendor/llama.cpp/", 1)[1]
        tar.extractall(dest, members=members, filter="data")
    archive.unlink()
    return dest / "convert_hf_to_gguf.py"


def run_command(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS bytes, CPU seconds) of one whole command; stops the bench with its output if it
    fails."""
    from peak_rss import run_whole_cpu

    os.sync()
    time.sleep(0.5)  # earlier runs' write-back must not land inside this timing
    wall, peak, code, output, cpu = run_whole_cpu(cmd)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{output[-3000:]}")
    return wall, peak, cpu


def bytecode_cache(folder: Path) -> None:
    """Let every timed command keep compiled bytecode (in ``folder``, not the checkout), as an installed package
    does: with PYTHONDONTWRITEBYTECODE set (some CI and agent shells set it), each command would compile ftwiz's
    own modules from source, about 0.2 s that no user pays. Compiled here, before any timing."""
    import ftwiz.core
    import ftwiz.tui

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)
    trees = [*ftwiz.core.__path__, *ftwiz.tui.__path__]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *trees], check=True, stdout=subprocess.DEVNULL)


def load_average() -> str:
    """The 1-minute load average: other work on the machine slows every contender's wall time."""
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def tensor_table(path: Path) -> dict[str, tuple[int, tuple[int, ...], int, int]]:
    """name -> (GGML type, shape, absolute offset, byte size), read straight from the GGUF header.

    gguf.GGUFReader builds Python objects for every vocabulary item (minutes for 151k tokens on a busy
    machine); here the metadata is skipped over, string arrays by their length fields only.
    """
    import struct

    import gguf

    data = memoryview(path.read_bytes()) if path.stat().st_size < (1 << 20) else None
    with open(path, "rb") as f:
        import mmap

        buf = data if data is not None else memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal pos
        n = take("Q")
        pos += n
        return bytes(buf[pos - n:pos]).decode("utf-8", "replace")

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes
    magic, _version, n_tensors, n_kv = take("IIQQ")
    assert magic == 0x46554747, f"{path} is not a GGUF"
    alignment = 32
    for _ in range(n_kv):
        key, vtype = string(), take("I")
        if vtype == 8:
            value = string()
        elif vtype == 9:
            itype, count = take("IQ")
            if itype == 8:
                for _ in range(count):
                    n = take("Q")  # not `pos += take(...)`: that reads pos before take() moves it
                    pos += n
            else:
                pos += sizes[itype] * count
            continue
        else:
            value = struct.unpack_from("<" + {4: "I", 5: "i"}.get(vtype, "B" * sizes[vtype]), buf, pos)[0]
            pos += sizes[vtype]
        if key == "general.alignment":
            alignment = int(value)
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = tuple(take("Q") for _ in range(take("I")))
        infos.append((name, take("I"), dims, take("Q")))
    start = pos + (-pos % alignment)
    table = {}
    for name, ggml_type, dims, offset in infos:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
        count = 1
        for d in dims:
            count *= d
        table[name] = (ggml_type, dims, start + offset, count // block * size)
    return table


def tensor_differences(ours: Path, theirs: Path) -> list[str]:
    """Names, types, shapes or bytes that differ between two GGUFs (empty: tensor-for-tensor identical)."""
    a, b = tensor_table(ours), tensor_table(theirs)
    diffs = [f"only in ftwiz: {n}" for n in sorted(a.keys() - b.keys())]
    diffs += [f"only in llama.cpp: {n}" for n in sorted(b.keys() - a.keys())]
    with open(ours, "rb") as fa, open(theirs, "rb") as fb:
        for name in sorted(a.keys() & b.keys()):
            (ta, da, oa, na), (tb, db, ob, nb) = a[name], b[name]
            if (ta, da) != (tb, db):
                diffs.append(f"{name}: type {ta} shape {list(da)} vs type {tb} shape {list(db)}")
            elif os.pread(fa.fileno(), na, oa) != os.pread(fb.fileno(), nb, ob):
                diffs.append(f"{name}: bytes differ")
    return diffs


def main(repeat: int = 3, llamacpp_dir: str | None = None, layers: int | None = None,
         with_llamacpp: bool = True) -> dict[str, float]:
    import tempfile

    if not SHARED_QWEN.is_dir():
        raise SystemExit(f"real-vocabulary case needs {SHARED_QWEN} (the shared tokenizers folder)")
    sys.path.insert(0, str(BENCH))
    from export_speed import timed_child

    ftwiz = str(Path(sys.executable).with_name("ftwiz"))
    with tempfile.TemporaryDirectory(prefix="ftwiz-export-vocab-", dir=os.environ.get("FTWIZ_BENCH_DIR")) as tmp:
        work = Path(tmp)
        model = build_model(work / "qwen25-05b", layers)
        bytecode_cache(work / "pycache")
        size = (model / "model.safetensors").stat().st_size
        converter = fetch_converter(Path(llamacpp_dir) if llamacpp_dir else work) if with_llamacpp else None
        if converter is not None:  # its bytecode cached too, so both sides start alike
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(converter.parent)], check=True,
                           stdout=subprocess.DEVNULL)
        def warm() -> None:
            """Read the model into the page cache, untimed, before every contender: this VM runs a DAMON
            "pageout" scheme (kdamond) that evicts file pages it finds cold, so without this whichever
            command came after a slow one found part of the model evicted (measured 0.6 s -> 1.9 s)."""
            with open(model / "model.safetensors", "rb") as f:
                while f.read(1 << 24):
                    pass

        warm()
        times: dict[str, list[tuple[float, int, float]]] = {}
        loads = [load_average()]

        def record(label: str, cmd: list[str], out: Path, keep: bool = False) -> None:
            """Time ``cmd``; its output is deleted afterwards, untimed, unless kept for the tensor comparison.
            Every contender starts with no earlier output on disk: on this VM a freshly written 1 GB file
            that is still there slows the next large write ~3x (cp measured 0.40 s -> 1.1-1.25 s)."""
            out.unlink(missing_ok=True)
            warm()
            times.setdefault(label, []).append(run_command(cmd))
            if not keep:
                out.unlink()

        # untimed warm-up of each contender: with PYTHONPYCACHEPREFIX every module's bytecode (numpy, torch, the
        # standard library) lives in the prefix, so a first run would compile them all inside its timing
        warm_env = {**os.environ, "FTWIZ_CACHE_DIR": str(work / "warmup-cache")}
        subprocess.run([ftwiz, "export", str(model), "--quant", "F16", "--out", str(work / "warmup.gguf")],
                       env=warm_env, check=True, capture_output=True)
        if converter is not None:
            subprocess.run([sys.executable, str(converter), str(model), "--outtype", "f16", "--outfile",
                            str(work / "warmup-llamacpp.gguf")], check=True, capture_output=True)
        for leftover in ("warmup.gguf", "warmup-llamacpp.gguf"):
            (work / leftover).unlink(missing_ok=True)
        inner: list[float] = []
        diffs: dict[str, list[str]] = {}
        for rep in range(repeat):  # interleaved, best of N: other load on the machine hits all alike
            compare = rep == 0 and with_llamacpp  # the converter takes ~10x longer: once is enough to compare
            record("cp", ["cp", str(model / "model.safetensors"), str(work / "copy.safetensors")],
                   work / "copy.safetensors")
            # an empty vocabulary cache (core/export/vocab_cache.py) each time: "cold" is the first export of a
            # tokenizer.json ftwiz has never seen (read and packed, then cached); the others re-export it as a
            # second quant or run would, from the cache the first cold export filled
            os.environ["FTWIZ_CACHE_DIR"] = str(work / f"ftwiz-cache-cold-{rep}")
            record("ftwiz F16 cold", [ftwiz, "export", str(model), "--quant", "F16", "--out",
                                      str(work / "ftwiz-F16.gguf"), "--overwrite"], work / "ftwiz-F16.gguf")
            os.environ["FTWIZ_CACHE_DIR"] = str(work / "ftwiz-cache-cold-0")
            for quant in ("F16", "Q8_0"):
                out = work / f"ftwiz-{quant}.gguf"
                record(f"ftwiz {quant}", [ftwiz, "export", str(model), "--quant", quant, "--out", str(out),
                                          "--overwrite"], out, keep=compare)
            if compare:
                for quant in ("f16", "q8_0"):
                    record(f"llama.cpp {quant}", [sys.executable, str(converter), str(model), "--outtype", quant,
                                                  "--outfile", str(work / f"llamacpp-{quant}.gguf")],
                           work / f"llamacpp-{quant}.gguf", keep=True)
                for quant in ("f16", "q8_0"):
                    ours, theirs = work / f"ftwiz-{quant.upper()}.gguf", work / f"llamacpp-{quant}.gguf"
                    diffs[quant] = tensor_differences(ours, theirs)
                    ours.unlink()
                    theirs.unlink()
            warm()
            inner.append(timed_child(model, work / "inner-F16.gguf", "F16")[0])
            (work / "inner-F16.gguf").unlink()
        loads.append(load_average())
    best = {label: min(runs) for label, runs in times.items()}
    cpu = {label: min(run[2] for run in runs) for label, runs in times.items()}
    cp_s = best["cp"][0]
    print(f"model: Qwen2.5-0.5B shape, {size / 1e6:.0f} MB bf16 safetensors, real Qwen2 vocabulary (151,936 rows)")
    print(f"load average at start / end: {loads[0]} / {loads[-1]} (high load stretches wall times; CPU seconds "
          "move less)")
    for label, (wall, rss, _cpu) in best.items():
        print(f"{label:15s} {wall:6.2f} s  {cp_s / wall:5.2f}x cp speed  peak RSS {rss / 2**20:6.0f} MiB "
              f"= {rss / size:.2f}x model  CPU {cpu[label]:5.2f} s  (best of {len(times[label])})")
    ratios = {
        "whole F16 vs cp": cp_s / best["ftwiz F16"][0],
        "whole F16 cold vs cp": cp_s / best["ftwiz F16 cold"][0],
        "whole Q8_0 vs cp": cp_s / best["ftwiz Q8_0"][0],
        "conversion F16 vs cp": cp_s / min(inner),
        "peak RSS F16 / model": best["ftwiz F16"][1] / size,
        "CPU s: cp / whole F16": cpu["cp"] / cpu["ftwiz F16"],
    }
    if with_llamacpp:
        ratios["llama.cpp f16 / ftwiz F16"] = best["llama.cpp f16"][0] / best["ftwiz F16"][0]
        ratios["llama.cpp q8_0 / ftwiz Q8_0"] = best["llama.cpp q8_0"][0] / best["ftwiz Q8_0"][0]
    print(f"conversion call alone (F16): {min(inner):.2f} s (each: {', '.join(f'{s:.2f}' for s in inner)})")
    for name, value in ratios.items():
        print(f"{name:28s} {value:5.2f}")
    print("targets: whole F16 >= 0.35x cp; >= 5x faster than llama.cpp; conversion >= 0.50x cp; RSS <= 0.25x")
    for quant, found in diffs.items():
        print(f"tensors vs llama.cpp {quant}: " + ("identical" if not found else f"{len(found)} differ: {found[:5]}"))
    print(json.dumps({k: round(v, 3) for k, v in ratios.items()}))
    return ratios
