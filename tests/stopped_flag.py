"""A CancelFlag already set, for tests that run `ftwiz train` in-process only as far as its data step.

With it, a run stops after the data step (splits and run card written), before a model is built: what the
run would train on can be read and checked against the oracle in seconds. The fixture ``stop_after_data``
(tests/conftest.py) installs it where ``ftwiz train`` takes it from.
"""

from __future__ import annotations


class StoppedFlag:
    """Set from the start: the runner stops at its first check."""

    def __init__(self) -> None:
        self.signal_name = "test"

    def set(self, signal_name: str = "cancel") -> None:
        self.signal_name = signal_name

    def __bool__(self) -> bool:
        return True
