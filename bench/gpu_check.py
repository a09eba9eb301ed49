"""GPU check: estimate vs measured peak and tokens/s on a real CUDA machine, plus the GPU-only code paths.

Run: bash bench/gpu_check.sh --wheels DIR [--out FILE] [--work DIR] [--dry-run]
On a CUDA machine that has PyTorch but no internet it:
1. installs ftwiz's other requirements from the wheels in DIR (``pip --no-index --find-links``), and
   stops with the list of what is missing when DIR lacks something;
2. builds random-weight models from real configs (bench/data/model_configs/gpu_check: Qwen2.5-0.5B,
   Llama-3.2-1B, Llama-3.1-8B) with a tokenizer trained on ftwiz's shipped corpus -- nothing downloaded;
3. per model and method (QLoRA: NF4 + double quant + paged 8-bit AdamW + bf16; LoRA; full where the
   planner says it fits): ``ftwiz plan --probe`` (estimate vs measured peak, parts, tokens/s) and a short
   ``ftwiz train`` (CUDA memory and tokens/s in its step events);
4. checks the NVML seam (a reading of this process, saved as a recorded fixture for tests) and the
   out-of-memory back-off on a real OOM (another process holds most of the GPU; training must back off
   and finish).
Every figure goes to one JSON file (--out, default gpu_check.json); a table is printed too. Stages that
would pass the time limit (7.5 minutes) are skipped and say so. ``--dry-run`` validates the inputs
(requirements against the wheels folder, the configs, the run list) without a GPU and runs nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bench" / "data" / "model_configs" / "gpu_check"
TIME_LIMIT_S = 450.0
GIB = 1024**3
# (model config, method, max length): short lengths keep the 8B runs inside the time limit.
RUNS = [("qwen2.5-0.5b", m, 512) for m in ("qlora", "lora", "full")] + \
       [("llama-3.2-1b", m, 512) for m in ("qlora", "lora", "full")] + \
       [("llama-3.1-8b", m, 256) for m in ("qlora", "lora")]
SEARCH_RUN = ("qwen2.5-0.5b", "lora")  # the one probe that searches the micro-batch; the others fix it to 1
FAMILY = {"qwen2": "chatml", "llama": "llama3"}
OOM_FREE_GIB = 24  # the back-off check leaves this much of the GPU to training


def requirements() -> list[str]:
    """ftwiz's dependencies from pyproject.toml (names only; pip checks the versions when installing)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    specs = re.findall(r'"([^"]+)"', block.group(1)) if block else []
    return [re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0] for spec in specs]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirements(names: list[str], installed: set[str], wheels: set[str]) -> list[str]:
    """Requirements neither installed nor offered by a wheel in the folder (normalized names)."""
    return [n for n in names if normalize(n) not in installed and normalize(n) not in wheels]


def wheel_names(folder: Path | None) -> set[str]:
    if folder is None or not folder.is_dir():
        return set()
    names = set()
    for path in list(folder.glob("*.whl")) + list(folder.glob("*.tar.gz")):
        names.add(normalize(path.name.split("-")[0]))
    return names


def installed_names() -> set[str]:
    return {normalize(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}


def install(wheels: Path | None, dry_run: bool) -> list[str]:
    """Install ftwiz and its requirements offline; the missing requirements (empty when all is there)."""
    needed = requirements() + ["setuptools", "wheel"]
    missing = missing_requirements(needed, installed_names(), wheel_names(wheels))
    if missing or dry_run:
        return missing
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-build-isolation", "-q", "-e", str(REPO)]
    if wheels is not None:
        cmd[4:4] = ["--find-links", str(wheels)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        # A dependency of a dependency may be missing too: pip names it; say it the same way.
        absent = sorted(set(re.findall(r"No matching distribution found for ([^\s]+)", done.stderr)))
        if absent:
            raise SystemExit(f"missing wheels in {wheels}: {', '.join(absent)}\n  fix: on a machine with internet, "
                             f"`pip download -d WHEELS {' '.join(absent)}` (same Python version and platform)")
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SystemExit("pip could not install ftwiz from the wheels folder:\n  " + "\n  ".join(tail))
    return []


def configs() -> dict[str, dict]:
    out = {}
    for name in sorted({run[0] for run in RUNS}):
        config = json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))
        for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size"):
            if key not in config:
                raise SystemExit(f"{CONFIGS / (name + '.json')}: missing {key}")
        out[name] = config
    return out


def dry_run_estimates(models: dict[str, dict]) -> dict[tuple[str, str], str]:
    """Where ftwiz is importable: each config as transformers builds it, and the planner's estimate at batch 1."""
    try:
        from ftwiz.core.planner.estimator import TrainSetup, estimate_memory, peak_bytes
        from ftwiz.core.planner.spec import spec_from_config
        from transformers import AutoConfig
    except ImportError:
        return {}
    out = {}
    for name, method, seq_len in RUNS:
        fields = {k: v for k, v in models[name].items() if not k.startswith("_")}
        AutoConfig.for_model(**fields)  # a config transformers refuses fails here, not on the GPU machine
        optimizer = "adamw_torch_fused" if method == "lora" else "paged_adamw_8bit"
        setup = TrainSetup(method=method, seq_len=seq_len, optimizer=optimizer, attention="sdpa")
        out[(name, method)] = f" (estimate {peak_bytes(estimate_memory(spec_from_config(fields), setup)) / GIB:.1f} GiB)"
    return out


def build_model(name: str, config: dict, out: Path) -> Path:
    """Random bf16 weights from the real config, built on the GPU, plus a shipped-corpus tokenizer."""
    import torch
    from ftwiz.core.tiny.tokenizer import build_tokenizer, save_tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM

    target = out / name
    if (target / "config.json").exists():
        return target
    tokenizer = build_tokenizer(FAMILY[config["model_type"]])
    fields = {k: v for k, v in config.items() if not k.startswith("_")}
    cfg = AutoConfig.for_model(**fields, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(target, safe_serialization=True, max_shard_size="5GB")
    save_tokenizer(tokenizer, target)
    del model
    torch.cuda.empty_cache()
    return target


def ftwiz(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    cli = "import sys; from ftwiz.core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", cli, *args], capture_output=True, text=True, timeout=timeout, env=env)


def probe(model_dir: Path, method: str, seq_len: int, search: bool, env: dict, timeout: float) -> dict:
    args = ["plan", str(model_dir), "--method", method, "--seq-len", str(seq_len), "--probe", "--json"]
    if not search:
        args += ["--batch-size", "1"]
    done = ftwiz(args, env, timeout)
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": (done.stderr or done.stdout).strip()[-400:]}
    chosen = (result.get("probe") or {}).get("chosen") or {}
    return {"estimate_gib": chosen.get("estimate_bytes", 0) / GIB, "measured_gib": chosen.get("peak_bytes", 0) / GIB,
            "micro_batch": chosen.get("micro_batch"), "tokens_per_s": chosen.get("tokens_per_s"),
            "parts_gib": {k: v / GIB for k, v in (chosen.get("parts") or {}).items()},
            "attempts": len(result["probe"]["attempts"]), "nvml_in_parts": "nvml_process_used" in chosen.get("parts", {}),
            "optimizer": result.get("optimizer"), "dtype": result.get("dtype")}


def train(model_dir: Path, method: str, seq_len: int, work: Path, env: dict, timeout: float, *, name: str,
          batch: int = 1, extra: list[str] | None = None) -> dict:
    recipe = work / f"{name}.yaml"
    recipe.write_text(f"model_name_or_path: {model_dir}\ndataset: [demo]\nfinetuning_type: {method}\n"
                      f"cutoff_len: {seq_len}\nper_device_train_batch_size: {batch}\nlogging_steps: 1\n"
                      f"save_steps: 1000\nrun_name: {name}\nexport_quant: [Q8_0]\n", encoding="utf-8")
    done = ftwiz(["train", str(recipe), "--max-steps", "6", *(extra or [])], env, timeout)
    events_path = Path(env["FTWIZ_RUNS_DIR"]) / name / "events.jsonl"
    events = [json.loads(line) for line in events_path.read_text().splitlines()] if events_path.exists() else []
    steps = [e for e in events if e.get("type") == "step"]
    rates = [s["tokens_per_s"] for s in steps[1:] if s.get("tokens_per_s")]
    return {"exit": done.returncode, "steps": len(steps), "backoffs": sum(e.get("type") == "backoff" for e in events),
            "tokens_per_s": sum(rates) / len(rates) if rates else None,
            "cuda_memory_in_steps": bool(steps) and all(s.get("mem_reserved_bytes") for s in steps),
            "nvml_in_steps": bool(steps) and all(s.get("mem_device_used_bytes") for s in steps),
            "peak_reserved_gib": max((s.get("mem_peak_bytes") or 0 for s in steps), default=0) / GIB,
            "error": None if done.returncode == 0 else (done.stderr or "").strip()[-400:]}


def nvml_seam(work: Path, env: dict) -> dict:
    code = ("import json,sys,torch;from ftwiz.core.hardware.probe import read_gpu_memory, probe_machine;"
            "x=torch.empty(256*2**20,dtype=torch.uint8,device='cuda');r=read_gpu_memory(0);"
            f"open({str(work / 'recorded_reading.json')!r},'w').write(r.model_dump_json(indent=1));"
            f"open({str(work / 'recorded_machine.json')!r},'w').write(probe_machine().model_dump_json(indent=1));"
            "print(r.model_dump_json())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        return {"ok": False, "error": done.stderr.strip()[-400:]}
    reading = json.loads(done.stdout.strip().splitlines()[-1])
    used = reading.get("nvml_process_used_bytes")
    return {"ok": used is not None and used >= reading["torch_reserved_bytes"], "reading": reading,
            "saved": str(work / "recorded_reading.json")}


def oom_backoff(model_dir: Path, work: Path, env: dict, timeout: float) -> dict:
    """A real OOM: a second process holds all but OOM_FREE_GIB; micro-batch 32 must back off and finish."""
    hog = ("import torch,time;free,_=torch.cuda.mem_get_info();"
           f"x=torch.empty(max(0,free-{OOM_FREE_GIB}*2**30),dtype=torch.uint8,device='cuda');print('held',flush=True);"
           "time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", hog], stdout=subprocess.PIPE, text=True, env=env)
    try:
        holder.stdout.readline()  # wait until the memory is held
        total_gib = json.loads(ftwiz(["doctor", "--json", "--quick"], env, 120).stdout or "{}").get("gpus", [{}])[0].get(
            "total_bytes", 80 * GIB) / GIB
        result = train(model_dir, "full", 1024, work, env, timeout, name="oom-backoff", batch=32,
                       extra=["--vram-gb", f"{total_gib:.0f}"])  # planned for the whole card, run in 24 GiB
    finally:
        holder.kill()
        holder.wait()
    result["ok"] = result["backoffs"] >= 1 and result["exit"] == 0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, help="folder of wheels for ftwiz's requirements (offline install)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the one file the figures go to")
    parser.add_argument("--work", type=Path, default=Path("gpu_check_work"), help="models, runs, recordings")
    parser.add_argument("--dry-run", action="store_true", help="validate the inputs; run nothing, need no GPU")
    parser.add_argument("--installed", action="store_true", help=argparse.SUPPRESS)  # set by the re-exec below
    args = parser.parse_args()
    started = float(os.environ.setdefault("GPU_CHECK_STARTED", str(time.time())))  # kept across the re-exec
    if args.wheels is not None and not args.wheels.is_dir():
        raise SystemExit(f"--wheels {args.wheels}: no such folder")
    missing = [] if args.installed else install(args.wheels, args.dry_run)
    if missing:
        where = f"in {args.wheels}" if args.wheels else "(no --wheels folder given)"
        raise SystemExit(f"missing requirements, not installed and no wheel {where}: {', '.join(missing)}\n"
                         f"  fix: on a machine with internet, `pip download -d WHEELS {' '.join(missing)}` "
                         "(same Python version and platform), then copy WHEELS here")
    if not args.installed and not args.dry_run:
        # An editable install is only importable in a fresh interpreter (its path hook loads at start-up).
        os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:], "--installed"])
    models = configs()
    if args.dry_run:
        print(f"requirements: all installed or in the wheels folder; configs: {', '.join(models)}")
        estimates = dry_run_estimates(models)
        for name, method, seq_len in RUNS:
            print(f"would run: {name} {method} at {seq_len} tokens: plan --probe"
                  f"{' (micro-batch search)' if (name, method) == SEARCH_RUN else ' --batch-size 1'}, then train 6 steps"
                  f"{estimates.get((name, method), '')}")
        print(f"would check: NVML seam reading, OOM back-off with {OOM_FREE_GIB} GiB left to training")
        return 0
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to torch: run this on the GPU machine (or use --dry-run)")
    args.work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FTWIZ_RUNS_DIR=str(args.work / "runs"), FTWIZ_CACHE_DIR=str(args.work / "cache"),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": [], "checks": {}}

    def left() -> float:
        return TIME_LIMIT_S - (time.time() - started)

    dirs = {name: build_model(name, config, args.work / "models") for name, config in models.items()}
    report["checks"]["nvml_seam"] = nvml_seam(args.work, env)
    for name, method, seq_len in RUNS:
        row = {"model": name, "method": method, "seq_len": seq_len}
        if left() < 60:
            row["skipped"] = "time limit"
        else:
            row["probe"] = probe(dirs[name], method, seq_len, (name, method) == SEARCH_RUN, env, left())
            if left() > 45:
                row["train"] = train(dirs[name], method, seq_len, args.work, env, left(), name=f"{name}-{method}")
        report["runs"].append(row)
        _print_row(row)
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")  # a kill still leaves the figures
    if left() > 60:
        report["checks"]["oom_backoff"] = oom_backoff(dirs["qwen2.5-0.5b"], args.work, env, left())
    else:
        report["checks"]["oom_backoff"] = {"skipped": "time limit"}
    report["seconds"] = round(time.time() - started, 1)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report["checks"], indent=1, default=str)[:2000])
    print(f"figures written to {args.out} in {report['seconds']} s")
    return 0


def _print_row(row: dict) -> None:
    probe_row, train_row = row.get("probe") or {}, row.get("train") or {}
    if "skipped" in row or "error" in probe_row:
        print(f"{row['model']:14} {row['method']:6} {row.get('skipped') or probe_row['error'][:100]}")
        return
    error = (probe_row["measured_gib"] - probe_row["estimate_gib"]) / max(probe_row["measured_gib"], 1e-9)
    print(f"{row['model']:14} {row['method']:6} {row['seq_len']:>5} mb {probe_row['micro_batch']:>2}: estimate "
          f"{probe_row['estimate_gib']:6.2f} GiB, measured {probe_row['measured_gib']:6.2f} GiB ({-error:+.0%} est.), "
          f"{probe_row['tokens_per_s'] or 0:8.0f} tok/s probe, {train_row.get('tokens_per_s') or 0:8.0f} tok/s train")


if __name__ == "__main__":
    sys.exit(main())
