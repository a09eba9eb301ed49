"""Step 3, data: which dataset, and is it usable? Reads it the way training will and shows the verdict.

``check_dataset`` parses every record (formats, roles, placeholders, empty answers), which takes a
moment on large files: it runs in a thread worker. Continue is allowed once at least one record is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftwiz.tui.screens.base import WizardScreen
from ftwiz.tui.screens.data_stage import (
    PREFERENCE_STAGES,
    STAGE_CHOICES,
    chosen_stage,
    learned_text,
    pair_preview,
    preference_shape,
    stage_options,
)
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, LoadingIndicator, Select, Static
from textual.worker import Worker, WorkerState


def absolute_entries(text: str) -> list[str]:
    """Comma-separated dataset entries; paths made absolute so a recipe written elsewhere still finds them."""
    entries = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        path = Path(part).expanduser()
        entries.append(str(path.resolve()) if path.exists() else part)
    return entries


def render_checks(reports: list[tuple[str, Any]]) -> Group:
    """Per source: records read, kept, rejected by reason; then the first kept conversation."""
    table = Table(expand=True)
    for column in ("source", "format", "read", "kept", "rejected"):
        table.add_column(column, no_wrap=column != "source")
    sample: dict[str, Any] | None = None
    for name, report in reports:
        formats = ", ".join(sorted({fmt for fmt, _how in report.formats.values()})) or "-"
        rejected = ", ".join(f"{reason} {count}" for reason, count in report.rejected.items()) or "0"
        table.add_row(name, formats, str(report.read), str(report.kept), rejected)
        if sample is None and report.samples:
            sample = report.samples[0]
    parts: list[Any] = [table]
    if sample:
        text = Text("First conversation:\n", style="bold")
        for message in sample.get("messages", []):
            content = str(message.get("content", "")).replace("\n", " ")
            text.append(f"{message.get('role', '?'):>9}: ", style="cyan")
            text.append((content[:200] + "…" if len(content) > 200 else content) + "\n")
        for answer in ("chosen", "rejected"):  # preference pairs: the two answers to the prompt above
            if sample.get(answer) is not None:
                content = str(sample[answer]).replace("\n", " ")
                text.append(f"{answer:>9}: ", style="green" if answer == "chosen" else "red")
                text.append((content[:200] + "…" if len(content) > 200 else content) + "\n")
        parts.append(text)
    placeholders = unfilled(reports)
    if placeholders:
        names = ", ".join("{{" + p + "}}" for p in placeholders)
        parts.append(Text(f"unfilled placeholders {names}: give their values below", style="yellow"))
    return Group(*parts)


def unfilled(reports: list[tuple[str, Any]], recipe: Any = None) -> list[str]:
    """``{{name}}`` placeholders the data leaves unfilled, and with ``recipe`` those of its ``system:`` prompt
    (training refuses both; the system prompt's were not asked for, so the wizard could not train)."""
    names = {p for _name, r in reports for p in r.unfilled_placeholders}
    if recipe is not None:
        from ftwiz.core.recipe_inputs import filled_system

        names.update(filled_system(recipe)[1])
    return sorted(names)


class DataScreen(WizardScreen):
    STEP = "data"
    NEXT = "plan"

    def __init__(self) -> None:
        super().__init__()
        self.usable = False
        self.placeholders: list[str] = []
        self.prepared: Any = None  # the last PreparedData the preview made

    def compose_body(self) -> Iterable[Widget]:
        yield Label("Dataset: 'demo', a file or a folder (several: comma-separated):")
        yield Input(id="dataset", placeholder="demo")
        yield Button("Check", id="check")
        yield LoadingIndicator(id="checking")
        yield Static("", id="demo-note", classes="hidden")
        yield Static("", id="checks")
        # preference-shaped data: which alignment stage trains on it (dpo by default)
        yield Horizontal(Label("Training stage:", classes="var-name"),
                         Select([], id="stage", allow_blank=True, prompt="stage"), id="stage-row",
                         classes="row hidden")
        # {{name}} placeholders (identity datasets): one field each, filled into the recipe's variables:
        yield Vertical(id="variables")
        yield Static("", id="preview")

    def on_mount(self) -> None:
        recipe = self.wizard.load_recipe()
        self.query_one("#dataset", Input).value = ", ".join(recipe.dataset)
        self.query_one("#next").focus()
        self.run_check()

    @on(Input.Submitted, "#dataset")
    def _submitted(self) -> None:
        self.run_check()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check":
            event.stop()
            self.run_check()

    def run_check(self) -> None:
        self.usable = False
        self.show_error(None)
        self.query_one("#checking").display = True
        entries = absolute_entries(self.query_one("#dataset", Input).value) or ["demo"]
        self.check(entries)

    @work(thread=True, exclusive=True, group="data", exit_on_error=False)
    def check(self, entries: list[str]) -> tuple[list[str], list[tuple[str, Any]]]:
        from ftwiz.core.data.pipeline import check_dataset

        recipe = self.wizard.state.recipe or self.wizard.load_recipe()
        reports = []
        for entry in entries:
            reports.append((entry, check_dataset(entry, formatting=recipe.formatting, columns=recipe.columns,
                                                 variables=dict(recipe.variables), dataset_dir=recipe.dataset_dir)))
        return entries, reports

    def _demo_note(self, recipe) -> None:
        """The tiny demo model on the user's own data: say that its answers will barely change."""
        from ftwiz.core.recipe_inputs import demo_model_note

        note = demo_model_note(recipe)
        box = self.query_one("#demo-note", Static)
        box.update(Text(note or "", style="yellow"))
        box.set_class(note is None, "hidden")

    def show_variables(self, names: list[str]) -> None:
        """A field per unfilled placeholder, plus the explicit choice to train with them as written."""
        recipe = self.wizard.state.recipe or self.wizard.load_recipe()
        box = self.query_one("#variables", Vertical)
        shown = [w.id for w in box.query(Input)]
        wanted = [f"var-{name}" for name in names]
        if shown == wanted and (bool(names) == bool(box.query(Checkbox))):
            return
        box.remove_children()
        if not names:
            return
        box.mount(Label("Fill the placeholders of the data and system prompt (training refuses to learn them "
                        "literally):"))
        for name in names:
            box.mount(Horizontal(Label("{{" + name + "}} =", classes="var-name"),
                                 Input(recipe.variables.get(name, ""), id=f"var-{name}",
                                       placeholder=f"value for {{{{{name}}}}}, then Enter"), classes="row"))
        box.mount(Checkbox("train with them as written (the model learns the literal {{...}})",
                           recipe.allow_placeholders, id="allow-placeholders"))

    def show_stage(self, shape: str | None) -> None:
        """Offer dpo/orpo/kto for preference data (the recipe's stage kept when it fits), else hide it."""
        recipe = self.wizard.state.recipe or self.wizard.load_recipe()
        stage = chosen_stage(recipe.stage, shape)
        if stage != recipe.stage:
            self._set_recipe(stage=stage)
        options = stage_options(shape)
        self.query_one("#stage-row").set_class(not options, "hidden")
        select = self.query_one("#stage", Select)
        with select.prevent(Select.Changed):
            select.set_options([(STAGE_CHOICES[name], name) for name in options])
            if options:
                select.value = stage

    @on(Select.Changed, "#stage")
    def _stage_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value in PREFERENCE_STAGES:
            self._set_recipe(stage=event.value)

    def _set_recipe(self, **update: Any) -> None:
        recipe = self.wizard.state.recipe or self.wizard.load_recipe()
        self.wizard.state.recipe = recipe.model_copy(update=update)

    @on(Input.Submitted, "#variables Input")
    def _variable_entered(self, event: Input.Submitted) -> None:
        event.stop()
        recipe = self.wizard.state.recipe or self.wizard.load_recipe()
        values = dict(recipe.variables)
        for field in self.query("#variables Input").results(Input):
            if field.value.strip():
                values[str(field.id).removeprefix("var-")] = field.value.strip()
        self._set_recipe(variables=values)
        self.run_check()

    @on(Checkbox.Changed, "#allow-placeholders")
    def _allow_changed(self, event: Checkbox.Changed) -> None:
        self._set_recipe(allow_placeholders=event.value)
        self.show_error(None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "preview" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self.on_preview_done(event)
            return
        if event.worker.group != "data" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.query_one("#checking").display = False
        if event.state == WorkerState.ERROR:
            self.query_one("#checks", Static).update("")
            self.show_error(event.worker.error or "the dataset could not be read")
            return
        entries, reports = event.worker.result
        self.query_one("#checks", Static).update(render_checks(reports))
        self.placeholders = unfilled(reports, self.wizard.state.recipe or self.wizard.load_recipe())
        self.show_variables(self.placeholders)
        self.usable = any(report.usable for _name, report in reports)
        if not self.usable:
            self.show_error("no usable record in this dataset: see the rejection reasons above")
            return
        recipe = self.wizard.state.recipe
        if recipe is not None and entries != recipe.dataset:
            self.wizard.state.recipe = recipe.model_copy(update={"dataset": entries})
        self._demo_note(self.wizard.state.recipe or self.wizard.load_recipe())
        self.show_stage(preference_shape(reports))  # before the preview, which tokenizes for the stage
        self.wizard.state.check = reports
        self.query_one("#preview", Static).update(Text("preparing a preview with the model's tokenizer...",
                                                        style="dim"))
        first = next((report.samples[0] for _name, report in reports if report.samples), None)
        self.preview(self.wizard.state.recipe or self.wizard.load_recipe(), first)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def preview(self, recipe, first: dict[str, Any] | None = None) -> Group:
        """What will be learned: the first conversation (the one shown above) masked as training masks it,
        and the length histogram, as ``ftwiz data preview`` shows them."""
        from ftwiz.core.data.preview import (
            learned_segments,
            length_lines,
            masked_sample,
            sample_view,
            tokenizer_label,
        )
        from ftwiz.core.data.render import TemplateRefused
        from ftwiz.core.data.template import chat_template_of
        from ftwiz.core.recipe_inputs import lengths_key, prepare_dataset, tokenizer_for

        tokenizer = tokenizer_for(recipe)  # the demo's alone, without building the model
        # the data step as `ftwiz data prepare` runs it (kept: the plan step's lengths, a look at the splits)
        prepared = self.prepared = prepare_dataset(recipe, tokenizer=tokenizer)
        # the plan step plans with these lengths, as `ftwiz train` does, instead of measuring again
        lengths = prepared.stats.get("train", {}).get("lengths") or []
        self.wizard.state.dataset_lengths = (lengths_key(recipe), list(lengths))
        template = chat_template_of(tokenizer, recipe.template, enable_thinking=getattr(recipe, "enable_thinking",
                                                                                        None))
        lines = length_lines(prepared, recipe.cutoff_len, recipe.effective_batch_size, width=30)
        if first and first.get("chosen") is not None and first.get("rejected") is not None:
            try:
                return Group(*pair_preview(tokenizer, template, first, recipe), Text(""), Text("\n".join(lines)))
            except TemplateRefused:
                first = None
        try:
            view = sample_view(tokenizer, template, first, recipe, record="first conversation") if first else None
        except TemplateRefused:
            view = None  # the model's template refuses that record: show the first prepared sample instead
        if view is not None:
            segments, learned, total = learned_segments(tokenizer, view), view.learned, len(view.labels)
            which = "the first conversation"
        else:
            segments, learned, total = masked_sample(tokenizer, prepared)
            which = "a training sample"
        header = Text(f"What the model learns from {which} ({learned} of {total} tokens, green; context dimmed; "
                      f"tokenizer {tokenizer_label(tokenizer)}):", style="bold")
        refused = [r for r in prepared.rejects if r.reason in ("template_refused", "tools_not_supported")]
        parts = [header, learned_text(segments), Text(""), Text("\n".join(lines))]
        if refused:  # the model's chat template cannot render these: they are left out of training
            first = refused[0]
            parts.append(Text(f"{len(refused)} record(s) left out: the model's chat template refuses them "
                              f"(first: {first.file}, line {first.line}: {first.message})", style="yellow"))
        return Group(*parts)

    def on_preview_done(self, event: Worker.StateChanged) -> None:
        preview = self.query_one("#preview", Static)
        if event.state == WorkerState.SUCCESS:
            preview.update(event.worker.result)
        elif event.state == WorkerState.ERROR:
            preview.update(Text(f"no preview: {event.worker.error}", style="yellow"))

    def can_continue(self) -> bool:
        if any(w.group == "data" and w.is_running for w in self.workers):
            self.notify("still reading the dataset...")
            return False
        if not self.usable:
            self.show_error("check the dataset first (Enter in the field); Continue needs one usable record")
            return False
        recipe = self.wizard.state.recipe or self.wizard.load_recipe()
        if self.placeholders and not recipe.allow_placeholders:
            names = ", ".join("{{" + n + "}}" for n in self.placeholders)
            self.show_error(f"fill {names} (type a value, Enter), or tick 'train with them as written'")
            return False
        return True
