"""A stand-in for ``ftwiz export RUN --quant Q --verify --events -``: real Progress/Finished events on
stdout and a file written where the real exporter puts it, so the export screen runs against a child.

    python tests/tui/fake_export.py RUN --quant Q8_0 [--verify] [--events -] [--fail]
"""

from __future__ import annotations

import argparse
import sys
import time

from ftwiz.core.events import Failed, Finished, Progress
from ftwiz.core.rundir import RunDir


def emit(event: object) -> None:
    sys.stdout.write(event.to_json() + "\n")  # type: ignore[attr-defined]
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--quant", default="Q8_0")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--events")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.01)
    args = parser.parse_args()
    run = RunDir.resolve(args.run)
    stages = ["merging", "writing GGUF", "quantizing", "verifying"]
    for done, stage in enumerate(stages):
        emit(Progress(stage="export", done=done, total=len(stages), message=stage))
        time.sleep(args.sleep)
        if args.fail and stage == "verifying":
            emit(Failed(reason="verification failed: top-1 token agreement 41%", fix="export F16 and compare"))
            return 1
    out = run.export / f"{run.name}-{args.quant}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"GGUF")
    emit(Progress(stage="export", done=len(stages), total=len(stages), message="export complete"))
    emit(Finished(output_path=str(out), summary={"quant": args.quant}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
