"""Log lines of the ML libraries that say nothing a person fine-tuning a model can act on, kept off the terminal.

Each is matched narrowly (one logger, and one message where the logger says more), so every other warning of
the same library still reaches the user.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable

# transformers 5 orders checkpoints by modification time and, when the first and the last were written less than
# a second apart (a small model saving every few steps), says the filesystem's mtime "may not be reliable" and
# orders them by step, which is the right order anyway: nothing is wrong with the user's disk.
_CHECKPOINT_ORDER = "mtime may not be reliable on this filesystem"


# transformers' Trainer copies the tokenizer's special-token ids into the model's config and says so. When the only
# id it copies is the pad token (ftwiz pads with EOS where a tokenizer has no pad, and Qwen2.5/Qwen3 configs name no
# pad id), nothing the model generates or stops on changes: padded positions carry no loss. A changed EOS or BOS
# is another matter, and that notice still shows.
_TOKEN_ALIGNMENT = re.compile(r"The tokenizer has new PAD/BOS/EOS tokens .* Updated tokens: (\{.*\})\.?$", re.S)


def _pad_only_alignment(message: str) -> bool:
    found = _TOKEN_ALIGNMENT.match(message)
    if not found:
        return False
    try:
        updated = ast.literal_eval(found.group(1))
    except (ValueError, SyntaxError):
        return False
    return isinstance(updated, dict) and set(updated) == {"pad_token_id"}


def _checkpoint_order(message: str) -> bool:
    return message.startswith(_CHECKPOINT_ORDER)


class _DropMessages(logging.Filter):
    """Drops the records whose message one of ``rules`` (message -> bool) matches."""

    def __init__(self, *rules: Callable[[str], bool]) -> None:
        super().__init__()
        self.rules = rules

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(rule(message) for rule in self.rules)


def quiet_library_notices() -> None:
    """Install the filters (idempotent: a second call adds nothing)."""
    # bitsandbytes 0.50, on a CPU with AVX512-BF16, says at import that its 4-bit inference kernel could not be
    # fetched and to `pip install kernels`: ftwiz never runs 4-bit inference on the CPU (training keeps the
    # training layout, evaluation and merge use the 16/32-bit base), so the advice only worries the reader.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    trainer_utils = logging.getLogger("transformers.trainer_utils")
    if not any(isinstance(f, _DropMessages) for f in trainer_utils.filters):
        trainer_utils.addFilter(_DropMessages(_checkpoint_order, _pad_only_alignment))
