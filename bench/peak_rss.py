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


# A tiny launcher between a big bench process and the command it measures: Linux carries the forking
# process's high-water mark into the child's ru_maxrss across exec, so a 1.4 GB parent would report
# 1.4 GB for `cp`. The launcher (python -S, a few MB) forks the command and reports its child's peak.
_LAUNCHER = ("import os, sys\n"
             "pid = os.fork()\n"
             "if pid == 0:\n"
             "    os.execvp(sys.argv[1], sys.argv[1:])\n"
             "_, status, usage = os.wait4(pid, 0)\n"
             "sys.stderr.write(f'\\nLAUNCHER_PEAK_KB {usage.ru_maxrss}\\n')\n"
             "sys.stderr.write(f'LAUNCHER_CPU_S {usage.ru_utime + usage.ru_stime}\\n')\n"
             "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run_whole(cmd: list[str]) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes, exit code, output) of one whole command, through the launcher."""
    wall, peak, code, output, _cpu = run_whole_cpu(cmd)
    return wall, peak, code, output


def run_whole_cpu(cmd: list[str]) -> tuple[float, int, int, str, float]:
    """:func:`run_whole` plus the command's CPU seconds (user + system, all its threads and children): on a
    machine shared with other work, CPU time moves much less than wall time."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = list(reversed(proc.stderr.splitlines()))
    peak = next((int(line.split()[1]) for line in lines if line.startswith("LAUNCHER_PEAK_KB")), 0)
    cpu = next((float(line.split()[1]) for line in lines if line.startswith("LAUNCHER_CPU_S")), 0.0)
    return wall, peak * 1024, proc.returncode, proc.stdout + proc.stderr, cpu
