"""Test-only seam: stop a long job at a named point inside its heavy phase, so a test can kill it there.

With ``FTWIZ_TEST_PAUSE_AT=<point>`` and ``FTWIZ_TEST_PAUSE_FILE=<marker>`` set, the process that reaches
``pause_point(<point>)`` writes its pid to the marker file and waits; the test waits for the marker
(never for a guessed number of seconds) and then sends SIGKILL or SIGINT. Creating ``<marker>.go``
lets the job continue instead (used to fill a disk under a running export). Never set by the product;
when the variable is unset a call costs one dictionary lookup.

Points: ``data.write`` (a JSONL split half written), ``merge.shard`` (a merged shard half written),
``export.header`` (GGUF header written, data not yet), ``quantize.start`` (before llama.cpp writes),
``export.tensors`` (GGUF tensor data half written), ``write:<file name>`` (any atomic write, complete but
not yet renamed into place).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV, MARKER_ENV = "FTWIZ_TEST_PAUSE_AT", "FTWIZ_TEST_PAUSE_FILE"


def pause_point(name: str) -> None:
    """Wait here (until killed, interrupted or released) when a test asked for point ``name``."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    marker = Path(os.environ[MARKER_ENV])
    go = marker.with_name(marker.name + ".go")
    os.environ.pop(PAUSE_ENV)  # once per process: a point reached in a loop pauses the first time only
    marker.write_text(str(os.getpid()), encoding="utf-8")
    while not go.exists():  # SIGINT raises KeyboardInterrupt out of this sleep, like out of real work
        time.sleep(0.02)
