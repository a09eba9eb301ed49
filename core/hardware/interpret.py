"""Turn raw GPU facts (from the probe seam) into what a user needs: devices, capabilities, problems.

Pure functions over :class:`RawProbe`, so every recorded machine in the tests runs the same code as a
real one. Facts used here (from NVIDIA's and AMD's documentation):
- bf16 needs compute capability >= 8.0 (Ampere); torch may *emulate* bf16 on older cards, which is slow,
  so we decide from the capability, not from torch's flag.
- FlashAttention-2 supports Ampere and newer (cc >= 8.0).
- CUDA 12.x wheels need a Linux driver >= 525.60; CUDA 11.x >= 450.80; CUDA 13.x >= 580. Within a major
  version, CUDA's minor-version compatibility lets an older driver run a newer build.
- NVML orders GPUs by PCI bus and ignores CUDA_VISIBLE_DEVICES; CUDA's default order is fastest-first.
  UUIDs are the only reliable join between the two.
"""

from __future__ import annotations

from ftwiz.core.hardware.probe import NvmlDevice, RawProbe
from ftwiz.core.hardware.report import GpuInfo, Problem

MIN_DRIVER_FOR_CUDA = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# PyTorch publishes CUDA wheels under these index tags (cuXYZ); pick the newest the driver supports.
TORCH_CUDA_TAGS = (118, 121, 124, 126, 128, 129, 130)
ROCM_BF16_ARCHES = ("gfx90a", "gfx940", "gfx941", "gfx942", "gfx950", "gfx11", "gfx12")


def cuda_version_text(driver_cuda: int | None) -> str | None:
    """NVML's 12040 -> "12.4"."""
    if not driver_cuda:
        return None
    return f"{driver_cuda // 1000}.{(driver_cuda % 1000) // 10}"


def _version_tuple(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def torch_install_command(driver_cuda: int | None) -> str:
    """The exact pip command for a CUDA build of torch that this driver can run."""
    best = None
    if driver_cuda:
        as_tag = (driver_cuda // 1000) * 10 + (driver_cuda % 1000) // 10
        usable = [tag for tag in TORCH_CUDA_TAGS if tag <= as_tag]
        # CUDA's minor-version compatibility lets a driver run any build of its own major version
        same_major = [tag for tag in TORCH_CUDA_TAGS if tag // 10 == driver_cuda // 1000]
        best = usable[-1] if usable else (same_major[0] if same_major else None)
    tag = best or TORCH_CUDA_TAGS[2]
    return f"pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu{tag}"


def _visible_nvml(raw: RawProbe) -> list[NvmlDevice]:
    """The NVML devices the user's frameworks will see, in the frameworks' order."""
    if raw.torch_devices and all(d.uuid for d in raw.torch_devices):
        by_uuid = {d.uuid: d for d in raw.nvml_devices}
        return [by_uuid[t.uuid] for t in raw.torch_devices if t.uuid in by_uuid]
    cvd = (raw.cuda_visible_devices or "").strip()
    if not cvd:
        return list(raw.nvml_devices)
    chosen: list[NvmlDevice] = []
    for token in (t.strip() for t in cvd.split(",")):
        if not token or token == "-1":
            break
        if token.startswith(("GPU-", "MIG-")):
            chosen += [d for d in raw.nvml_devices if d.uuid.startswith(token)]
        elif token.isdigit() and int(token) < len(raw.nvml_devices):
            chosen.append(raw.nvml_devices[int(token)])
        else:
            break  # CUDA stops at the first invalid entry
    return chosen


def gpus_from_probe(raw: RawProbe) -> list[GpuInfo]:
    if raw.nvml_devices:
        gpus = []
        for index, dev in enumerate(_visible_nvml(raw)):
            cc = dev.compute_capability
            gpus.append(GpuInfo(
                vendor="nvidia", index=index, name=dev.name, uuid=dev.uuid, total_bytes=dev.total_bytes,
                free_bytes=dev.free_bytes, compute_capability=cc, bf16=cc >= (8, 0),
                flash_attention_2=cc >= (8, 0),
            ))
        return gpus
    if raw.torch_hip_build and raw.torch_devices:
        return [
            GpuInfo(
                vendor="amd", index=d.index, name=d.name, uuid=d.uuid, total_bytes=d.total_bytes,
                free_bytes=d.free_bytes, bf16=bool(d.arch and d.arch.startswith(ROCM_BF16_ARCHES)),
                flash_attention_2=bool(d.arch and d.arch.startswith(("gfx90a", "gfx94", "gfx95"))),
            )
            for d in raw.torch_devices
        ]
    if raw.mps_available:
        return [GpuInfo(vendor="apple", index=0, name="Apple Silicon GPU (MPS)",
                        total_bytes=raw.unified_memory_bytes or 0, bf16=True)]
    return []


def gpu_problems(raw: RawProbe, gpus: list[GpuInfo]) -> list[Problem]:
    problems: list[Problem] = []
    nvidia = [g for g in gpus if g.vendor == "nvidia"]
    if not raw.torch_installed:
        problems.append(Problem(severity="error", what="PyTorch is not installed or fails to import",
                                fix=torch_install_command(raw.driver_cuda_version) if nvidia
                                else "pip install torch"))
        return problems
    if raw.nvml_devices and not nvidia:
        problems.append(Problem(
            severity="warning",
            what=f"CUDA_VISIBLE_DEVICES={raw.cuda_visible_devices!r} hides every NVIDIA GPU",
            fix="unset CUDA_VISIBLE_DEVICES, or set it to a GPU index or UUID shown by `nvidia-smi -L`"))
    if nvidia and not raw.torch_cuda_build:
        problems.append(Problem(
            severity="error",
            what=f"an NVIDIA GPU is present but torch {raw.torch_version} is a CPU-only build",
            fix=torch_install_command(raw.driver_cuda_version)))
    elif nvidia and raw.torch_cuda_build:
        build = _version_tuple(raw.torch_cuda_build)
        driver = raw.driver_cuda_version or 0
        # minor-version compatibility: only a lower *major* version than the build's is fatal
        if build and driver // 1000 < build[0]:
            need = MIN_DRIVER_FOR_CUDA.get(build[0], "a newer release")
            problems.append(Problem(
                severity="error",
                what=(f"NVIDIA driver {raw.driver_version} supports CUDA up to "
                      f"{cuda_version_text(driver)}, but torch was built for CUDA {raw.torch_cuda_build}"),
                fix=(f"update the NVIDIA driver to {need} or newer, or install a matching torch: "
                     f"{torch_install_command(driver)}")))
        elif not raw.torch_cuda_available:
            problems.append(Problem(
                severity="error", what=f"torch cannot use the GPU: {raw.torch_error or 'cuda not available'}",
                fix="reboot after a driver update, and check `nvidia-smi` works; then re-run `ftwiz doctor`"))
    for gpu in nvidia:
        if gpu.compute_capability and gpu.compute_capability < (8, 0):
            problems.append(Problem(
                severity="info",
                what=f"{gpu.name} (compute capability {gpu.compute_capability[0]}.{gpu.compute_capability[1]})"
                     " has no native bf16 or FlashAttention-2",
                fix="ftwiz trains in fp16 with SDPA attention on this card; nothing to do"))
    if raw.torch_hip_build and not gpus and raw.platform == "linux":
        problems.append(Problem(severity="warning", what="torch is a ROCm build but sees no AMD GPU",
                                fix="add your user to the 'render' and 'video' groups and check `rocminfo`"))
    if raw.mps_built and not raw.mps_available and raw.platform == "darwin":
        problems.append(Problem(severity="warning", what="torch has MPS support but the GPU is not available",
                                fix="update to macOS 12.3 or newer on Apple Silicon"))
    if not gpus:
        problems.append(Problem(
            severity="info", what="no GPU found: training runs on the CPU",
            fix="fine for the demo and tiny models; for 1B+ models use a machine with an NVIDIA GPU"))
    return problems
