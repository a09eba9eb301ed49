"""The ftwiz wizard: ``ftwiz`` with no verb opens it.

One screen per step (doctor -> model -> data -> plan -> train -> export -> deploy -> chat); each screen
calls the same ``ftwiz.core`` entry points as the CLI verbs, and long jobs (train, export) run as child
processes (``ftwiz train ... --events -``) read through :mod:`ftwiz.tui.worker`.

Startup budget: the first screen must be interactive in under a second, so nothing here (or in any
screen module) imports torch, transformers or the core modules that do at module level. Screens import
core inside workers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

if TYPE_CHECKING:
    from ftwiz.core.hardware.report import HardwareReport
    from ftwiz.core.recipe import Recipe

HardwareLoader = Callable[[], "HardwareReport"]
CommandFactory = Callable[..., list[str]]


def default_train_command(recipe_path: Path, resume: str | None = None) -> list[str]:
    """``ftwiz train RECIPE --events -``, or ``ftwiz train --resume RUN --events -`` (the run keeps its recipe)."""
    from ftwiz.tui.worker import ftwiz_command

    if resume:
        return ftwiz_command("train", "--resume", resume, "--events", "-")
    return ftwiz_command("train", str(recipe_path), "--events", "-")


def default_export_command(run: str, quant: str) -> list[str]:
    """The export child: ``ftwiz export RUN --quant Q --verify --overwrite --events -``.

    Overwrites an earlier export of the same run and type: in the wizard, Export means "make it now".
    """
    from ftwiz.tui.worker import ftwiz_command

    return ftwiz_command("export", run, "--quant", quant, "--verify", "--overwrite", "--events", "-")


def live_hardware() -> HardwareReport:
    """The real machine, backends included (seconds: subprocess checks; always run in a worker)."""
    from ftwiz.core.hardware.detect import detect

    return detect(probe_backends=True)


def recorded_hardware(path: str | Path) -> HardwareLoader:
    """A recorded machine (tests/fixtures/machines/*.json) with fixed system facts: deterministic screens."""

    def load() -> HardwareReport:
        from ftwiz.core.hardware.detect import build_report
        from ftwiz.core.hardware.probe import RawProbe

        raw = RawProbe.from_json(path)
        system = {"cpu_model": "recorded CPU", "cpu_cores": 16, "ram_total_bytes": 32 * 1024**3,
                  "ram_available_bytes": 24 * 1024**3, "disk_free_bytes": {"runs": 200 * 1024**3}}
        return build_report(raw, system, [])

    return load


def demo_recipe_path() -> Path:
    """The shipped demo recipe (package data), the wizard's default when the user brings nothing."""
    from importlib.resources import files

    return Path(str(files("ftwiz.recipes").joinpath("demo.yaml")))


@dataclass
class WizardState:
    """What the user chose so far; each screen reads what earlier ones left and adds its part."""

    recipe_path: Path
    recipe: Recipe | None = None
    hardware: HardwareReport | None = None
    plan: Any = None
    check: Any = None
    run_name: str | None = None
    resume: str | None = None
    gguf_path: str | None = None
    chat_model: str | None = None
    base_chat_model: str | None = None  # set once the base model is exported for side-by-side answers
    # (lengths_key(recipe), token lengths of the training split) measured by the data step, for the plan
    dataset_lengths: tuple[tuple, list[int]] | None = None


class FtwizApp(App[int]):
    """The wizard. Dependencies that touch the machine are injectable so tests drive every screen."""

    CSS_PATH = "ftwiz.tcss"
    TITLE = "ftwiz"
    SUB_TITLE = "fine-tune, export and chat, offline"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "toggle_theme", "Light/dark"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        recipe_path: str | Path | None = None,
        *,
        hardware_loader: HardwareLoader | None = None,
        train_command: CommandFactory = default_train_command,
        export_command: CommandFactory = default_export_command,
        offer_resume: bool = True,
    ) -> None:
        super().__init__()
        self.state = WizardState(recipe_path=Path(recipe_path) if recipe_path else demo_recipe_path())
        self.hardware_loader = hardware_loader or live_hardware
        self.train_command = train_command
        self.export_command = export_command
        self.offer_resume = offer_resume

    def on_mount(self) -> None:
        import asyncio

        from ftwiz.tui.quit_fast import DaemonExecutor
        from ftwiz.tui.screens.doctor import DoctorScreen

        # thread workers on daemon threads: quitting never waits for one that is still busy (quit_fast.py)
        asyncio.get_running_loop().set_default_executor(DaemonExecutor())
        self.push_screen(DoctorScreen())

    def load_recipe(self) -> Recipe:
        """The recipe the wizard works on (loaded once; screens edit the model in place)."""
        if self.state.recipe is None:
            from ftwiz.core.recipe import load_recipe

            self.state.recipe = load_recipe(self.state.recipe_path)
        return self.state.recipe

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        from ftwiz.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def running_jobs(self) -> list[Any]:
        """Child jobs (training, export) still working on any open screen.

        A child that already reported its result (and is only flushing files before it exits) does not
        count: quitting then loses nothing, and the screen waits for it to exit on its way out.
        """
        return [screen.job for screen in self.screen_stack
                if getattr(screen, "job", None) is not None and screen.job.running
                and not getattr(screen, "got_final", False)]

    async def action_quit(self) -> None:
        """Quit; while a job runs, ask first, then stop it so training keeps a checkpoint."""
        if not self.running_jobs():
            self.exit(0)
            return
        from ftwiz.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                for job in self.running_jobs():
                    job.cancel()  # SIGINT: the trainer saves a checkpoint; screens wait for it on unmount
                self.exit(0)

        await self.push_screen(ConfirmScreen("A job is still running. Quit? Training saves a checkpoint "
                                             "first and `ftwiz` offers to resume it next time.",
                                             yes="Quit", no="Stay"), answered)

    def goto(self, name: str) -> None:
        """Open the wizard step ``name`` (doctor, model, data, plan, train, export, deploy, chat)."""
        self.push_screen(make_screen(name))


_SCREENS: dict[str, tuple[str, str]] = {
    "doctor": ("ftwiz.tui.screens.doctor", "DoctorScreen"),
    "model": ("ftwiz.tui.screens.model", "ModelScreen"),
    "data": ("ftwiz.tui.screens.data", "DataScreen"),
    "plan": ("ftwiz.tui.screens.plan", "PlanScreen"),
    "train": ("ftwiz.tui.screens.train", "TrainScreen"),
    "export": ("ftwiz.tui.screens.export", "ExportScreen"),
    "deploy": ("ftwiz.tui.screens.deploy", "DeployScreen"),
    "chat": ("ftwiz.tui.screens.chat", "ChatScreen"),
    "help": ("ftwiz.tui.screens.help", "HelpScreen"),
}
STEPS = ("doctor", "model", "data", "plan", "train", "export", "deploy", "chat")


def make_screen(name: str) -> Any:
    """A fresh screen for a step; screen modules are imported on first use to keep startup fast."""
    import importlib

    module_name, class_name = _SCREENS[name]
    return getattr(importlib.import_module(module_name), class_name)()


def run_wizard(args: argparse.Namespace) -> int:
    """Entry point called by the launcher with ``ftwiz wizard``'s parsed arguments; returns the exit code."""
    if args.recipe and not Path(args.recipe).is_file():
        print(f"error: recipe '{args.recipe}' not found\n  fix: give a recipe YAML path, or no argument for the demo",
              file=sys.stderr)
        return 2
    app = FtwizApp(
        args.recipe,
        hardware_loader=recorded_hardware(args.machine) if args.machine else None,
        offer_resume=not args.no_resume,
    )
    return run_app(app)


def run_app(app: FtwizApp, **run_kwargs: Any) -> int:
    """Run the wizard; once it closes, end what its workers started (e.g. the doctor's smoke tests)."""
    from ftwiz.tui.quit_fast import end_child_processes

    try:
        result = app.run(**run_kwargs)
    finally:
        end_child_processes()  # training/export children were already stopped by their screens
    return int(result or 0)
