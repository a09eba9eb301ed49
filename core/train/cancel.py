"""The flag a Ctrl-C, a SIGTERM or the wizard's Stop sets to end training at the next step boundary.

Apart from the Trainer callback that reads it (:mod:`ftwiz.core.train.callbacks`, which imports transformers):
``ftwiz train`` installs its signal handlers and checks its inputs before the ~10 s import of transformers and
torch, so a typo is reported at once.
"""

from __future__ import annotations

import threading


class CancelFlag:
    """Set from a signal handler (or the wizard); read by the callback at the next step boundary."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    def set(self, signal_name: str = "cancel") -> None:
        self.signal_name = signal_name
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()
