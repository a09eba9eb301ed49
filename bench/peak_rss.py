"""Peak resident memory of a child process, reported through its stdout (shared by the memory benches).

The child calls :func:`report_peak` last; the parent reads it back with :func:`peak_from`. /proc's VmHWM
is the kernel's own high-water mark, so nothing has to sample the child while it runs.
"""

from __future__ import annotations

from pathlib import Path


def report_peak() -> None:
    """Print this process's peak RSS (kB, from /proc) as the last stdout line, for the parent to read."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(f"PEAK_KB {line.split()[1]}", flush=True)


def peak_from(stdout: str) -> int:
    return int(next(line for line in reversed(stdout.splitlines()) if line.startswith("PEAK_KB")).split()[1]) * 1024
