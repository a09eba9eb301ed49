"""How fast the wizard's first screen is interactive, against ``python -c "import textual"`` as baseline.

    python bench/tui_startup.py [--repeat 5] [--machine tests/fixtures/machines/rtx4060_desktop.json]

Each measurement is a fresh interpreter (imports are what startup costs). "Interactive" means the doctor
screen is mounted and its Continue button has focus; hardware detection still runs in its worker thread
then, by design, so its seconds are not on the startup path. Reports the median of ``--repeat`` runs:
the process wall time, and the time inside the process from importing ftwiz.tui.app to interactive.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
from ftwiz.tui.app import FtwizApp, recorded_hardware, live_hardware
import asyncio

async def main():
    machine = sys.argv[1]
    app = FtwizApp(hardware_loader=recorded_hardware(machine) if machine else live_hardware)
    async with app.run_test(size=(80, 24)) as pilot:
        from ftwiz.tui.screens.doctor import DoctorScreen
        while not (isinstance(app.screen, DoctorScreen) and app.focused is not None
                   and app.focused.id == "next"):
            await pilot.pause(0.005)
        ready = time.perf_counter() - t0
        heavy = sorted(m for m in ("torch", "transformers", "peft", "datasets", "llama_cpp") if m in sys.modules)
        print(json.dumps({"in_process_s": ready, "heavy_modules": heavy}), flush=True)
        os._exit(0)

asyncio.run(main())
"""


def _timed(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)  # noqa: S603
    return time.perf_counter() - start, done.stdout


def measure(repeat: int = 5, machine: str | None = None) -> dict[str, object]:
    """Median startup numbers over ``repeat`` fresh processes (seconds)."""
    baseline, wall, inside = [], [], []
    heavy: list[str] = []
    for _ in range(repeat):
        baseline.append(_timed([sys.executable, "-c", "import textual.app"])[0])
        elapsed, out = _timed([sys.executable, "-c", CHILD, machine or ""])
        result = json.loads(out.strip().splitlines()[-1])
        wall.append(elapsed)
        inside.append(result["in_process_s"])
        heavy = result["heavy_modules"]
    return {
        "baseline_import_textual_s": statistics.median(baseline),
        "first_screen_wall_s": statistics.median(wall),
        "first_screen_in_process_s": statistics.median(inside),
        "over_baseline_s": statistics.median(wall) - statistics.median(baseline),
        "heavy_modules_loaded": heavy,
        "repeat": repeat,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--machine", help="recorded machine JSON (default: probe this machine in the worker)")
    args = parser.parse_args()
    machine = str(Path(args.machine).resolve()) if args.machine else None
    print(json.dumps(measure(args.repeat, machine), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
