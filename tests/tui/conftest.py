"""Wizard test helpers: a recorded machine (deterministic doctor screen) and a fake training child."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MACHINES = HERE.parent / "fixtures" / "machines"
FAKE_TRAIN = HERE / "fake_train.py"


def fake_train_command(steps: int = 20, sleep: float = 0.05, resume_sleep: float | None = None,
                       **extra: object) -> Callable[..., list[str]]:
    """A train_command for FtwizApp that runs tests/tui/fake_train.py as the child.

    ``resume_sleep`` (default: ``sleep``) paces a resumed run, so a test can cancel a slow run and then
    let the resumed one finish quickly.
    """

    def command(recipe_path: Path, resume: str | None = None) -> list[str]:
        pace = sleep if resume is None or resume_sleep is None else resume_sleep
        cmd = [sys.executable, str(FAKE_TRAIN), str(recipe_path), "--steps", str(steps), "--sleep", str(pace)]
        for key, value in extra.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        if resume:
            cmd += ["--resume", resume]
        return cmd

    return command


@pytest.fixture
def machine() -> Path:
    return MACHINES / "rtx4060_desktop.json"


@pytest.fixture
def make_app(machine: Path) -> Callable[..., object]:
    """FtwizApp on the recorded RTX 4060 machine; keyword arguments override the defaults."""
    from ftwiz.tui.app import FtwizApp, recorded_hardware

    def make(**kwargs: object) -> FtwizApp:
        kwargs.setdefault("hardware_loader", recorded_hardware(machine))
        kwargs.setdefault("train_command", fake_train_command())
        return FtwizApp(**kwargs)  # type: ignore[arg-type]

    return make
