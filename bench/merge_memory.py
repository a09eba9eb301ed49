"""Peak RSS of ftwiz's streamed merge against peft's merge_and_unload, on the same model and adapter.

    .venv/bin/python bench/merge_memory.py [--layers 24] [--hidden 1024]

Each merge runs in its own child process and reports its own peak resident set (VmHWM, which exec
resets, so the parent's memory never leaks into a child's number). The model is random-init Llama (24 layers: about 800 MB in float32); the
adapter has non-zero lora_B on every linear layer. Prints both peaks, the ratio (target <= 0.35x), the
import-only baseline, and the largest difference between the two merged outputs (must be ~0).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_rss import peak_from, report_peak  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def child(mode: str, base: str, adapter: str, out: str) -> None:
    if mode == "torch-baseline":  # what ftwiz's merge imports
        import torch  # noqa: F401
        from ftwiz.core.export import merge  # noqa: F401
        return
    if mode == "peft-baseline":  # what the peft route imports
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        return
    if mode == "ftwiz":
        from ftwiz.core.export.merge import merge_adapter

        merge_adapter(adapter, out, base_dir=base)
        return
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(out)


def run_child(mode: str, base: Path, adapter: Path, out: Path) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(base), str(adapter), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} merge failed:\n{proc.stderr[-2000:]}")
    return peak_from(proc.stdout), time.perf_counter() - start


def build(work: Path, layers: int, hidden: int) -> tuple[Path, Path]:
    import torch
    from ftwiz.core.tiny import build_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = build_tiny_model(work / "base", arch="llama", hidden_size=hidden, num_layers=layers, num_heads=16,
                            num_kv_heads=4, vocab_size=512)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    peft_model.save_pretrained(work / "adapter")
    return base, work / "adapter"


def max_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between same-named tensors of two model folders (one tensor at a time)."""
    from ftwiz.core.export.tensors import list_tensors, read_tensor

    theirs = {ref.name: ref for ref in list_tensors(b)}
    worst = 0.0
    for ref in list_tensors(a):
        diff = (read_tensor(ref).float() - read_tensor(theirs[ref.name]).float()).abs().max()
        worst = max(worst, float(diff))
    return worst


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        report_peak()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftwiz-merge-bench-") as tmp:
        work = Path(tmp)
        base, adapter = build(work, args.layers, args.hidden)
        size = sum(f.stat().st_size for f in base.glob("*.safetensors"))
        torch_base, _ = run_child("torch-baseline", base, adapter, work / "none")
        peft_base, _ = run_child("peft-baseline", base, adapter, work / "none")
        ours, t_ours = run_child("ftwiz", base, adapter, work / "ours")
        theirs, t_theirs = run_child("peft", base, adapter, work / "peft")
        diff = max_diff(work / "ours", work / "peft")
    mib = 2**20
    print(f"model weights on disk:        {size / mib:8.1f} MiB")
    print(f"ftwiz merge peak RSS:         {ours / mib:8.1f} MiB  ({t_ours:.1f} s; imports alone {torch_base / mib:.0f} MiB)")
    print(f"peft merge_and_unload peak:   {theirs / mib:8.1f} MiB  ({t_theirs:.1f} s; imports alone {peft_base / mib:.0f} "
          "MiB)")
    print(f"ratio ftwiz/peft:             {ours / theirs:8.2f}x  (target <= 0.35x)")
    print(f"working sets above imports:   {(ours - torch_base) / mib:8.1f} MiB vs {(theirs - peft_base) / mib:.1f} MiB "
          f"({(ours - torch_base) / max(1, theirs - peft_base):.2f}x)")
    print(f"max |ftwiz - peft| merged:    {diff:.3g}")


if __name__ == "__main__":
    main()
