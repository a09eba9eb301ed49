"""``detect()``: the whole hardware report that ``ftwiz doctor``, the planner and the wizard read."""

from __future__ import annotations

from ftwiz.core.hardware.backends import check_bitsandbytes, check_llama_cpp, check_ollama
from ftwiz.core.hardware.interpret import cuda_version_text, gpu_problems, gpus_from_probe
from ftwiz.core.hardware.probe import RawProbe, probe_machine
from ftwiz.core.hardware.report import BackendStatus, HardwareReport, Problem
from ftwiz.core.hardware.system import system_facts

GIB = 1024**3
LOW_DISK_BYTES = 20 * GIB  # a 7B merge + F16 GGUF + a quant needs ~35 GB; 20 GB is the floor for small models
LOW_RAM_BYTES = 8 * GIB


def build_report(raw: RawProbe, system: dict, backends: list[BackendStatus]) -> HardwareReport:
    """Pure: interpret recorded or live facts into a report with problems and fixes."""
    gpus = gpus_from_probe(raw)
    report = HardwareReport(
        gpus=gpus,
        driver_version=raw.driver_version,
        driver_cuda_version=cuda_version_text(raw.driver_cuda_version),
        torch_version=raw.torch_version,
        torch_cuda_version=raw.torch_cuda_build,
        torch_hip_version=raw.torch_hip_build,
        torch_sees_gpu=raw.torch_cuda_available,
        mps_available=raw.mps_available,
        backends=backends,
        **system,
    )
    problems: list[Problem] = gpu_problems(raw, gpus)
    for path, free in report.disk_free_bytes.items():
        if free < LOW_DISK_BYTES:
            problems.append(Problem(severity="warning", what=f"only {free / GIB:.1f} GiB free at {path}",
                                    fix="free space or set FTWIZ_RUNS_DIR / HF_HOME to a larger disk"))
    if report.ram_total_bytes and report.ram_total_bytes < LOW_RAM_BYTES:
        problems.append(Problem(severity="warning", what=f"{report.ram_total_bytes / GIB:.1f} GiB of RAM",
                                fix="merging and exporting models over 3B needs 16 GB; close other programs"))
    problems += backend_problems(backends, has_cuda=report.device == "cuda")
    report.problems = problems
    return report


def backend_problems(backends: list[BackendStatus], *, has_cuda: bool) -> list[Problem]:
    fixes = {
        "bitsandbytes": ("bitsandbytes cannot run 4-bit layers: QLoRA is unavailable",
                         "pip install --force-reinstall 'bitsandbytes>=0.49'"),
        "llama-cpp-python": ("llama-cpp-python does not import: GGUF quantize, verify and serve are unavailable",
                             "pip install --force-reinstall --no-cache-dir llama-cpp-python"),
        "ollama": ("Ollama is not reachable: `ftwiz register` needs it (llama.cpp serving still works)",
                   "start it with `ollama serve` (install from ollama.com if `ollama` is not found)"),
    }
    problems = []
    for backend in backends:
        if backend.ok or backend.name not in fixes:
            continue
        what, fix = fixes[backend.name]
        severity = "info" if backend.name == "ollama" else ("error" if has_cuda else "warning")
        problems.append(Problem(severity=severity, what=f"{what} ({backend.detail})", fix=fix))
    return problems


def detect(probe_backends: bool = True, raw: RawProbe | None = None) -> HardwareReport:
    """Detect this machine. ``probe_backends=False`` skips the subprocess checks (for the planner)."""
    raw = raw or probe_machine()
    backends: list[BackendStatus] = []
    if probe_backends:  # independent subprocess/HTTP checks: run them side by side
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(check) for check in (check_bitsandbytes, check_llama_cpp, check_ollama)]
            backends = [future.result() for future in futures]
    return build_report(raw, system_facts(), backends)
