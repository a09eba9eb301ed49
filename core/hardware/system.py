"""CPU, RAM and disk facts (psutil), and where the disk space matters: runs and the HF cache."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from ftwiz.core.paths import hf_cache_dir, runs_dir


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _existing(path: Path) -> Path:
    """The nearest existing ancestor: free space is a property of the file system, not the folder."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_free(paths: list[Path]) -> dict[str, int]:
    return {str(p): int(shutil.disk_usage(_existing(p)).free) for p in paths}


def system_facts() -> dict:
    import psutil

    memory = psutil.virtual_memory()
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        "ram_total_bytes": int(memory.total),
        "ram_available_bytes": int(memory.available),
        "disk_free_bytes": disk_free([runs_dir(), hf_cache_dir()]),
        "hf_cache": str(hf_cache_dir()),
        "hf_offline": os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"),
    }
