"""The same job through ``ftwiz VERB`` and through the wizard (Pilot) gives the same result.

Each wizard step and CLI verb calls one core function (DESIGN.md, "Rooms"); these tests drive
both front ends on the same inputs and compare what a user gets: the plan, the prepared splits, the GGUF,
the Ollama registration and the models registry entry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.paths import runs_dir

from .helpers import open_deploy, screen_text, wait_until

PLAN_FIELDS = ("fits", "method", "device", "micro_batch", "grad_accum", "gradient_checkpointing", "max_seq_len",
               "lora_rank", "optimizer", "dtype", "est_seconds_per_epoch", "reasons", "warnings")


async def test_plan_step_and_ftwiz_plan_recommend_the_same_setup(make_app, demo_base_model: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A cutoff_len below some demo samples: both measure the lengths as `ftwiz train` does (its tokenizer,
    template and cutoff), so they agree on fit, method, batch, length, time per epoch and the reasons."""
    import importlib

    from ftwiz.tui.app import demo_recipe_path
    from ftwiz.tui.screens.plan import PlanScreen

    # this machine, read once: free RAM moves between two reads, and the plan's budget line says it
    detect_module = importlib.import_module("ftwiz.core.hardware.detect")
    machine = detect_module.detect(probe_backends=False)
    monkeypatch.setattr(detect_module, "detect", lambda **_: machine)
    recipe = tmp_path / "short.yaml"
    recipe.write_text(Path(demo_recipe_path()).read_text().replace("cutoff_len: 256", "cutoff_len: 56"))
    assert "cutoff_len: 56" in recipe.read_text()
    code = cli_main(["plan", str(recipe), "--json"])
    from_cli = json.loads(capsys.readouterr().out)
    assert code == (0 if from_cli["fits"] else 1)
    app = make_app(recipe_path=recipe, offer_resume=False, hardware_loader=lambda: machine)
    async with app.run_test(size=(120, 40)) as pilot:
        app.goto("plan")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
                         timeout=120, what="the plan")
        from_wizard = app.screen.plan.model_dump(mode="json")
    # the same data lengths (measured as train measures them), the same fit, method and batch, said alike
    assert {k: from_wizard[k] for k in PLAN_FIELDS} == {k: from_cli[k] for k in PLAN_FIELDS}
    assert from_cli["max_seq_len"] <= 56 and from_cli["est_seconds_per_epoch"] is not None
    assert any("are longer and are dropped" in reason for reason in from_cli["reasons"]), from_cli["reasons"]


def _split_files(folder: Path) -> dict[str, list[dict]]:
    return {p.name: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
            for p in sorted(folder.glob("*.jsonl"))}


async def test_data_step_prepares_the_splits_ftwiz_data_prepare_writes(make_app, tmp_path: Path) -> None:
    from ftwiz.tui.app import demo_recipe_path
    from ftwiz.tui.screens.data import DataScreen

    from .test_first_hour import _data_step

    cutoff = str(__import__("yaml").safe_load(Path(demo_recipe_path()).read_text())["cutoff_len"])
    assert cli_main(["data", "prepare", "demo", "--model", "demo", "--cutoff-len", cutoff,
                     "--out", str(tmp_path / "cli")]) == 0
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _data_step(app, pilot, "demo")
        await wait_until(pilot, lambda: isinstance(screen, DataScreen) and screen.prepared is not None,
                         timeout=60, what="the preview")
        screen.prepared.save_splits(tmp_path / "wizard")
    cli, wizard = _split_files(tmp_path / "cli"), _split_files(tmp_path / "wizard")
    assert {"train.jsonl", "validation.jsonl"} <= set(cli) and len(cli["train.jsonl"]) > 10
    assert wizard == cli  # the same records in the same splits, in the same order
    stats = json.loads((tmp_path / "cli" / "stats.json").read_text())
    assert json.loads((tmp_path / "wizard" / "stats.json").read_text())["train"] == stats["train"]


@pytest.fixture
def tuned_run(tiny_qwen2: Path, request: pytest.FixtureRequest) -> Path:
    """A finished full fine-tune of the tiny Qwen2 (its model copied in), as `ftwiz train` leaves one."""
    run = runs_dir() / f"parity-{request.node.name[:40]}"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(tiny_qwen2, run / "model")
    (run / "recipe.yaml").write_text(f"model_name_or_path: {tiny_qwen2}\ndataset: [demo]\nfinetuning_type: full\n"
                                     "cutoff_len: 192\nsystem: You are terse.\nexport_quant: [Q8_0]\n")
    (run / "status.json").write_text(json.dumps({"state": "completed"}))
    return run


def _gguf_contents(path: Path) -> tuple[dict[str, object], dict[str, tuple]]:
    """(metadata key -> value, tensor name -> (type, shape, bytes)) of a GGUF, as llama.cpp reads them."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = {name: [bytes(field.parts[i]).hex() for i in field.data] for name, field in reader.fields.items()}
    tensors = {t.name: (int(t.tensor_type), tuple(int(d) for d in t.shape), bytes(t.data.tobytes()))
               for t in reader.tensors}
    return fields, tensors


@pytest.mark.slow
async def test_export_step_writes_the_gguf_ftwiz_export_writes(make_app, tuned_run: Path, tmp_path: Path) -> None:
    """The wizard runs `ftwiz export RUN --verify --events -` as a child; `ftwiz export` in-process writes
    the same tensors and metadata, and both pass verification."""
    cli_gguf = tmp_path / "cli.gguf"
    assert cli_main(["export", tuned_run.name, "--quant", "Q8_0", "--verify", "--out", str(cli_gguf)]) == 0
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.state.run_name = tuned_run.name
        app.goto("export")
        from ftwiz.tui.screens.export import ExportScreen

        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen), what="the export step")
        await pilot.pause()
        assert app.screen.query_one("#quant").value == "Q8_0"
        app.screen.query_one("#export").press()
        await wait_until(pilot, lambda: app.state.gguf_path is not None, timeout=120,
                         what=f"the export to finish: {screen_text(app)}")
        wizard_gguf = Path(app.state.gguf_path)
    assert wizard_gguf == tuned_run / "export" / f"{tuned_run.name}-Q8_0.gguf"
    from ftwiz.core.export.verify_record import read_verify_record

    assert read_verify_record(wizard_gguf).passed and read_verify_record(cli_gguf).passed
    cli_fields, cli_tensors = _gguf_contents(cli_gguf)
    wizard_fields, wizard_tensors = _gguf_contents(wizard_gguf)
    assert wizard_tensors == cli_tensors and len(cli_tensors) > 5
    assert wizard_fields == cli_fields
    assert "tokenizer.chat_template" in cli_fields


async def test_register_step_and_ftwiz_register_make_the_same_model_and_registry_entry(
        make_app, fake_ollama, tuned_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.registry import find_model

    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    gguf = convert_to_gguf(tuned_run / "model", tuned_run / "export" / f"{tuned_run.name}-Q8_0.gguf", "Q8_0")
    assert cli_main(["register", tuned_run.name, "--name", "from-cli"]) == 0
    app = make_app(offer_resume=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, gguf, run_name=None)
        app.screen.query_one("#ollama-name").value = "from-wizard"
        app.screen.query_one("#register").press()
        await wait_until(pilot, lambda: "registered in Ollama as from-wizard" in screen_text(app), timeout=60,
                         what="registration")
    cli, wizard = fake_ollama.models["from-cli"], fake_ollama.models["from-wizard"]
    # the same Modelfile: template, SYSTEM and num_ctx from the run's recipe, stops from the GGUF
    assert {k: v for k, v in wizard.items() if k != "model"} == {k: v for k, v in cli.items() if k != "model"}
    # num_ctx: the model's window (its config's max_position_embeddings), which the recipe's cutoff_len 192 fits in
    window = json.loads((tuned_run / "model" / "config.json").read_text())["max_position_embeddings"]
    assert cli["system"] == "You are terse." and cli["parameters"]["num_ctx"] == min(window, 4096)
    entry = find_model(str(gguf))
    assert sorted(r.name for r in entry.ollama) == ["from-cli", "from-wizard"]
    assert entry.source_run == tuned_run.name and entry.role == "fine-tuned"
