"""Step 2, model: pick a shipped recipe (use case x model size) and, if wanted, another base model.

The model is resolved locally (``demo``, a folder, or a hub id in the HF cache); a hub id not downloaded
yet is offered for download (sizes, disk, fit and licence first; see ftwiz.tui.widgets.pull_panel): the
wizard never downloads behind the user's back. Resolving ``demo`` builds the tiny model once, so it runs in a
thread worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ftwiz.tui.screens.base import WizardScreen
from ftwiz.tui.widgets.pull_panel import PullPanel, needs_pull
from rich.text import Text
from textual import on, work
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState


def shipped_recipes() -> list[Path]:
    """Every recipe YAML shipped in ``ftwiz.recipes``, the demo first."""
    from importlib.resources import files

    root = Path(str(files("ftwiz.recipes")))
    found = sorted(root.glob("*.yaml"), key=lambda p: (p.stem != "demo", p.stem))
    return found


def recipe_header(path: Path) -> str:
    """The recipe's first comment line: what it is for, in the author's words."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("# ").strip()
    except OSError:
        pass
    return ""


class ModelScreen(WizardScreen):
    STEP = "model"
    NEXT = "data"

    def compose_body(self) -> Iterable[Widget]:
        yield Label("Recipe (what to fine-tune for, on which model size):")
        options = []
        for path in shipped_recipes():
            options.append(Option(Text.assemble((path.stem, "bold"), f"  {recipe_header(path)}"), id=str(path)))
        yield OptionList(*options, id="recipes")
        yield Label("Base model: 'demo', a local folder, or a hub id (downloaded once you agree):")
        yield Input(id="model", placeholder="demo")
        yield Static("", id="resolved")
        # The demo model is built on first use (30 s idle, minutes on a busy machine): a bar, not a hang.
        yield ProgressBar(total=None, id="build", show_eta=False, classes="hidden")
        yield PullPanel(id="pull", classes="hidden")
        yield Static(Text("checking which models fit this machine...", style="dim"), id="choices")

    def on_mount(self) -> None:
        recipes = self.query_one("#recipes", OptionList)
        current = str(self.wizard.state.recipe_path)
        for index in range(recipes.option_count):
            if recipes.get_option_at_index(index).id == current:
                recipes.highlighted = index
        self._load(self.wizard.state.recipe_path)
        self.query_one("#next").focus()
        self.list_choices()

    @work(thread=True, exclusive=True, group="choices", exit_on_error=False)
    def list_choices(self):
        from ftwiz.core.planner.catalog import model_choices
        from ftwiz.core.tiny.demo import demo_base_model_dir

        return model_choices(self.wizard.state.hardware, demo_dir=demo_base_model_dir())

    def _show_choices(self, choices) -> None:
        from rich.table import Table

        table = Table(title="Models for this machine (type a name into the field above)", title_justify="left",
                      expand=True, caption="fits: samples of 1,024 tokens; time: one epoch of 1,000 samples of "
                                           "256 tokens (an estimate)", caption_justify="left")
        for column in ("model", "where", "size", "on disk", "licence", "fits, time/epoch"):
            # names are what users type in: never cut; the verdict wraps instead
            table.add_column(column, no_wrap=column != "fits, time/epoch")
        for choice in choices:
            # the same judgement as the doctor's: on a CPU, 1B+ fits in memory but is slow; a GPU is advised
            style = "red" if not choice.fits else "yellow" if choice.slow else "green"
            table.add_row(choice.name, *_download_cells(choice), Text(choice.verdict(), style=style))
        self.query_one("#choices", Static).update(table)

    def _load(self, path: Path) -> None:
        from ftwiz.core.errors import FtwizError

        self.wizard.state.recipe_path = Path(path)
        self.wizard.state.recipe = None
        try:
            recipe = self.wizard.load_recipe()
        except FtwizError as exc:
            self.show_error(exc)
            return
        self.show_error(None)
        self.query_one("#model", Input).value = recipe.model_name_or_path
        self.query_one("#resolved", Static).update("")

    @on(OptionList.OptionSelected, "#recipes")
    def _recipe_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._load(Path(event.option.id))

    def can_continue(self) -> bool:
        if self.wizard.state.recipe is None:
            return False
        name = self.query_one("#model", Input).value.strip() or "demo"
        self.resolve(name)
        return False  # the worker moves on once the model is found locally

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def resolve(self, name: str) -> tuple[str, Path]:
        from ftwiz.core.models import resolve_model

        if name == "demo":
            from ftwiz.core.tiny.demo import demo_base_model_ready, ensure_demo_base_model

            if not demo_base_model_ready():
                self.app.call_from_thread(self._building, None)
                return name, ensure_demo_base_model(
                    on_progress=lambda step: self.app.call_from_thread(self._building, step))
        return name, resolve_model(name)

    def _building(self, step) -> None:
        """Show the demo model's build: what is happening, a bar, and the time left once it is measured."""
        from ftwiz.tui.screens.train import format_eta

        bar = self.query_one("#build", ProgressBar)
        bar.remove_class("hidden")
        if step is None:
            text = "building the demo model (first launch only, cached afterwards)..."
        else:
            bar.update(total=step.total, progress=step.done)
            left = f", about {format_eta(step.eta_s)} left" if step.eta_s else ", estimating the time left"
            text = f"{step.message}{left if step.stage == 'pre-training' else ''} (first launch only)"
        self.query_one("#resolved", Static).update(Text(text, style="dim"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "choices":
            if event.state == WorkerState.SUCCESS:
                self._show_choices(event.worker.result)
            elif event.state == WorkerState.ERROR:
                self.query_one("#choices", Static).update(Text(f"model list unavailable: {event.worker.error}",
                                                               style="yellow"))
            return
        if event.worker.group != "model":
            return
        if event.state == WorkerState.RUNNING:
            if self.query_one("#build", ProgressBar).has_class("hidden"):  # else the build already says more
                self.query_one("#resolved", Static).update("looking for the model on this machine...")
            return
        self.query_one("#build", ProgressBar).add_class("hidden")
        if event.state == WorkerState.SUCCESS:
            name, path = event.worker.result
            recipe = self.wizard.state.recipe
            if recipe is not None and name != recipe.model_name_or_path:
                self.wizard.state.recipe = recipe.model_copy(update={"model_name_or_path": name})
            self.query_one("#resolved", Static).update(Text(f"found: {path}", style="green"))
            self.show_error(None)
            self.wizard.goto(self.NEXT or "data")
        elif event.state == WorkerState.ERROR:
            self.query_one("#resolved", Static).update("")
            name = self.query_one("#model", Input).value.strip()
            if needs_pull(name, event.worker.error):  # ask, then download with progress (PullPanel.Pulled next)
                self.show_error(None)
                self.query_one("#pull", PullPanel).offer(name)
                return
            self.show_error(event.worker.error or "model not found")

    @on(PullPanel.Pulled)
    def _pulled(self, event: PullPanel.Pulled) -> None:
        self.resolve(event.repo_id)  # found in the cache now: on to the data step


def _download_cells(choice) -> tuple[Text, str, str, Text]:
    """where (downloaded ones marked), parameters, size on disk (~ when estimated), licence (gated ones marked)."""
    from ftwiz.core.hub.progress import human_size

    size = f"{choice.parameters / 1e9:.2f}B" if choice.parameters >= 1e8 else f"{choice.parameters / 1e6:.1f}M"
    where = Text(f"✓ {choice.where}", style="green") if choice.downloaded else Text(choice.where, style="dim")
    disk = "-" if choice.disk_bytes is None else ("" if choice.downloaded else "~") + human_size(choice.disk_bytes)
    licence = Text(choice.licence or "-")
    if choice.gated:
        licence.append(" (gated)", style="yellow")  # pull needs an accepted licence and a token
    return where, size, disk, licence
