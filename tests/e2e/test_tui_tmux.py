"""The wizard in a real terminal: tmux runs ``ftwiz``, the test types keys and reads the screen.

This is what Pilot cannot show: the console script, the real terminal driver, key decoding and the
process exit. Skipped when tmux is not installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

MACHINE = Path(__file__).resolve().parents[1] / "fixtures" / "machines" / "rtx4060_desktop.json"


class Tmux:
    """One private tmux server (its own socket) running one window of a fixed size."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "wiz", *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "wiz")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.2)
        state = "alive" if self.alive() else "gone"
        raise AssertionError(f"'{text}' never appeared (tmux session {state}); the screen shows:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", "wiz"],
                              capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def tmux(ftwiz_env: dict[str, Path], demo_base_model: Path) -> Iterator[Tmux]:
    # One socket per test: a server killed by the previous test may still be going away, and a new session
    # started on its socket name can vanish with it (CI once saw an empty pane for 60 s that way).
    session = Tmux(f"ftwiz-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    env = {k: os.environ[k] for k in os.environ if k.startswith(("FTWIZ_", "HF_", "TRANSFORMERS_", "TOKENIZERS"))}
    env["TERM"] = "xterm-256color"
    command = " ".join([
        "env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
        shlex.quote(sys.executable), "-m", "ftwiz.tui.launcher_main", "wizard", "--machine", shlex.quote(str(MACHINE)),
        "--no-resume", "; sleep 30",  # keep the pane after exit so the test can read the last screen
    ])
    session.run("-f", "/dev/null", "new-session", "-d", "-s", "wiz", "-x", "100", "-y", "30", command)
    assert session.alive(), "tmux did not start the wizard's session"
    try:
        yield session
    finally:
        session.run("kill-server")


def test_wizard_in_a_real_terminal_walks_to_the_plan_and_quits(tmux: Tmux) -> None:
    shown = tmux.wait_for("GeForce RTX 4060", timeout=120)
    assert "1 doctor" in shown and "Continue" in shown
    tmux.keys("Enter")
    tmux.wait_for("Base model")
    tmux.keys("Enter")
    shown = tmux.wait_for("First conversation", timeout=120)
    assert "demo" in shown
    tmux.keys("Enter")
    shown = tmux.wait_for("accumulation", timeout=120)  # the plan: "micro-batch N x M accumulation"
    assert "memory" in shown
    tmux.keys("F1")
    tmux.wait_for("ftwiz wizard")  # the help dialog
    tmux.keys("Escape")
    tmux.keys("C-q")
    deadline = time.monotonic() + 20
    while "accumulation" in tmux.screen() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "accumulation" not in tmux.screen(), "the wizard did not quit on Ctrl+Q"


@pytest.mark.slow
def test_wizard_in_a_real_terminal_trains_the_demo_cancels_and_resumes(tmux: Tmux, ftwiz_env: dict[str, Path]) -> None:
    """The real trainer as the wizard's child, driven by keys only, as a user over SSH would type them."""
    from ftwiz.core.events import read_events

    tmux.wait_for("GeForce RTX 4060", timeout=120)
    for expected in ("Base model", "First conversation", "accumulation"):
        tmux.keys("Enter")
        tmux.wait_for(expected, timeout=180)
    tmux.keys("Enter")  # Train
    tmux.wait_for("ETA", timeout=300)  # the first step line: training is live
    tmux.keys("c")
    tmux.wait_for("Stop training?")
    tmux.keys("y")
    shown = tmux.wait_for("r Resume", timeout=300)  # the footer offers Resume once the run has stopped
    assert "training cancelled" in shown
    tmux.keys("r")
    tmux.wait_for("resuming", timeout=60)
    shown = tmux.wait_for("training completed", timeout=600)
    assert "Continue" in shown
    newest = max(ftwiz_env["runs"].glob("*/events.jsonl"), key=lambda p: p.stat().st_mtime)  # demo, demo-2...
    events = list(read_events(newest))
    started = [e for e in events if e.type == "started"]
    assert len(started) == 2 and started[1].resumed_from_step > 0, "the second start should resume, not restart"
    cancelled_at = next(i for i, e in enumerate(events) if e.type == "finished" and e.status == "cancelled")
    assert any(e.type == "checkpoint" for e in events[:cancelled_at]), "cancel should keep a checkpoint"
    tmux.keys("C-q")
    deadline = time.monotonic() + 20
    while "training completed" in tmux.screen() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "training completed" not in tmux.screen(), "the wizard did not quit on Ctrl+Q"
