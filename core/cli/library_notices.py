"""Log lines of the ML libraries that say nothing a person fine-tuning a model can act on, kept off the terminal.

Each is matched narrowly (one logger, and one message where the logger says more), so every other warning of
the same library still reaches the user.
"""

from __future__ import annotations

import logging

# transformers 5 orders checkpoints by modification time and, when the first and the last were written less than
# a second apart (a small model saving every few steps), says the filesystem's mtime "may not be reliable" and
# orders them by step, which is the right order anyway: nothing is wrong with the user's disk.
_CHECKPOINT_ORDER = "mtime may not be reliable on this filesystem"


class _DropMessage(logging.Filter):
    """Drops the records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_library_notices() -> None:
    """Install the filters (idempotent: a second call adds nothing)."""
    # bitsandbytes 0.50, on a CPU with AVX512-BF16, says at import that its 4-bit inference kernel could not be
    # fetched and to `pip install kernels`: ftwiz never runs 4-bit inference on the CPU (training keeps the
    # training layout, evaluation and merge use the 16/32-bit base), so the advice only worries the reader.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    trainer_utils = logging.getLogger("transformers.trainer_utils")
    if not any(isinstance(f, _DropMessage) for f in trainer_utils.filters):
        trainer_utils.addFilter(_DropMessage(_CHECKPOINT_ORDER))
