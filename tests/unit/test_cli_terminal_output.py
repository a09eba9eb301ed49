"""What `ftwiz export` shows on a terminal: the spinner names the file being written with its brackets, and a
report is styled exactly where rich's console would style it (a log marked not-a-terminal keeps each path
on one line)."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest
from ftwiz.core.cli import console as console_module

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("env", [
    {}, {"FORCE_COLOR": "1"}, {"FORCE_COLOR": ""}, {"FORCE_COLOR": "0"}, {"TTY_COMPATIBLE": "0"},
    {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "2"},
])
@pytest.mark.parametrize("stream_type", [_Terminal, io.StringIO])
def test_styled_agrees_with_richs_console(env: dict[str, str], stream_type: type,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle is rich's own decision: where it sees no terminal it wraps at 80 columns, so say() must
    print plain text there (TTY_COMPATIBLE=0 on a terminal printed a long path broken over two lines)."""
    from rich.console import Console

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "JUPYTER_COLUMNS", "JUPYTER_LINES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = stream_type()
    assert console_module.styled(stream) == Console(file=stream).is_terminal


def test_tty_compatible_0_on_a_terminal_keeps_a_long_path_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    path = "/models/" + "a-folder-name-long-enough-to-wrap-" * 4 + "m.gguf"
    console_module.say(("wrote", "green"), f" {path} (1.0 MiB)")
    assert screen.getvalue() == f"wrote {path} (1.0 MiB)\n"


def test_the_export_spinner_shows_brackets_in_the_file_name(tiny_qwen2: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named 'm [bold]v2.gguf' was shown as 'writing m v2.gguf' in bold: its name read as markup."""
    from ftwiz.core.cli import main
    from rich.console import Console
    from rich.status import Status
    from rich.text import Text

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    # what the spinner shows, as rich renders each update (its frames are drawn by a timer: not every one is)
    seen: list[str] = []
    real_update = Status.update
    monkeypatch.setattr(Status, "update", lambda self, status=None, **kw: (
        seen.append(Text.from_markup(str(status)).plain), real_update(self, status, **kw))[1])
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    # set in the module's namespace, removed afterwards: setattr would first make the lazy console (while stdout
    # is this fake terminal, so it colours) and leave it behind for the tests that follow
    monkeypatch.setitem(vars(console_module), "console", Console(file=screen, force_terminal=True, width=200))
    out = tmp_path / "m [bold]v2.gguf"
    assert main(["export", str(tiny_qwen2), "--quant", "F16", "--out", str(out)]) == 0
    assert any(text.startswith("writing m [bold]v2.gguf (") for text in seen), seen
    assert f"wrote {out} (" in ANSI.sub("", screen.getvalue())


def test_models_list_and_show_print_brackets_in_names_and_paths(tiny_qwen2: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The GGUF `ftwiz export --out 'm [v2].gguf'` wrote was listed as 'm .gguf' (its name read as markup)."""
    from ftwiz.core.cli import main
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.verify import Check, VerifyReport
    from ftwiz.core.export.verify_record import record_path

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FTWIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("COLUMNS", "400")
    run = tmp_path / "runs" / "r"
    (run / "export").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\n")
    gguf = convert_to_gguf(tiny_qwen2, run / "export" / "m [bold]v2 [x]-F16.gguf", "F16")
    record_path(gguf).write_text(VerifyReport(gguf_path=str(gguf), hf_model_dir=str(tiny_qwen2), quant="F16",
                                              checks=[Check(name="logits", passed=True)]).to_json())
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    shown = capsys.readouterr().out
    assert "m [bold]v2 [x]-F16.gguf" in shown and str(gguf) in shown, shown
    assert main(["models", "show", str(gguf)]) == 0
    shown = ANSI.sub("", capsys.readouterr().out)
    assert f"path  {gguf}" in shown and f"passed ({record_path(gguf)})" in shown, shown


def test_export_check_and_adapter_only_print_brackets_in_paths(tiny_qwen2: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`ftwiz export 'm [v2]' --check` said 'model: m ' and --adapter-only 'wrote  ad.gguf': the name read as markup."""
    import shutil

    from ftwiz.core.cli import main
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = tmp_path / "m [v2]"
    shutil.copytree(tiny_qwen2, model)
    capsys.readouterr()
    assert main(["export", str(model), "--check", "--quant", "F16"]) == 0
    assert f"model: {model}" in capsys.readouterr().out

    adapter = tmp_path / "adapter [v2]"
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(model), LoraConfig(r=4, target_modules=["q_proj"]))
    lora.save_pretrained(adapter)
    out = tmp_path / "[b] ad.gguf"
    assert main(["export", str(adapter), "--adapter-only", "--out", str(out)]) == 0
    assert f"wrote {out} (use as ADAPTER" in capsys.readouterr().out
    assert out.is_file()


def test_recipe_and_training_summary_print_brackets_in_paths(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """'recipe new' said 'wrote /data/ /r .yaml' for '/data [v2]/r [v2].yaml', and the training summary's
    'next: ftwiz export RUN' named a run folder without its brackets: a command that could not be copied."""
    from ftwiz.core.cli import main
    from ftwiz.core.cli.train_progress import TrainProgress
    from ftwiz.core.train.result import TrainResult
    from rich.console import Console

    recipe = tmp_path / "data [v2]" / "r [v2].yaml"
    recipe.parent.mkdir()
    assert main(["recipe", "new", str(recipe)]) == 0
    assert f"wrote {recipe}; edit it, then `ftwiz recipe validate {recipe}`\n" == capsys.readouterr().out
    assert main(["recipe", "validate", str(recipe)]) == 0
    assert capsys.readouterr().out.startswith(f"ok {recipe}: ")

    screen = io.StringIO()
    run = tmp_path / "runs [v2]" / "r"
    result = TrainResult(run_dir=run, status="completed", output_path=run / "adapter",
                         summary={"steps": 2, "seconds": 1.0})
    TrainProgress(Console(file=screen, width=400)).final(result)
    shown = screen.getvalue()
    assert f"Training completed: {run}" in shown and str(run / "adapter") in shown
    assert f"next: ftwiz export '{run}' --quant" in shown, shown  # quoted for the shell


def test_an_error_to_a_log_is_whole_lines_with_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error naming a long path was wrapped at 80 columns in a log (the path split over two lines); a fix
    with brackets keeps them."""
    from ftwiz.core.errors import FtwizError

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    where = "/models/" + "a-folder-name-long-enough-to-wrap-" * 3 + "config.json"
    console_module.print_error(FtwizError("vocab_size is 0", where=where, fix="pip install 'ftwiz[modelscope]'"))
    assert log.getvalue() == f"error: {where}: vocab_size is 0\n  fix: pip install 'ftwiz[modelscope]'\n"


@pytest.mark.parametrize("stderr", [False, True])
def test_a_closed_stream_is_written_to_as_rich_does_nothing(stderr: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ftwiz export ... >&-` (Python sets sys.stdout to None) wrote the GGUF, then ended in an AttributeError
    traceback and exit 1 on its report line; rich's console writes nowhere and carries on."""
    from ftwiz.core.errors import FtwizError

    monkeypatch.setattr(sys, "stderr" if stderr else "stdout", None)
    console_module.say(("wrote", "green"), " /models/m.gguf (1.0 MiB)", stderr=stderr)
    if stderr:
        console_module.print_error(FtwizError("model not found", fix="give a folder"))


def test_a_reader_that_went_away_ends_quietly_as_rich_does() -> None:
    """`ftwiz export ... --verify | head -1`: the lines after the reader left ended in a BrokenPipeError traceback;
    rich's console (the oracle, what the CLI printed through before) exits 1 without one."""
    import subprocess

    code = ("import time\nfrom ftwiz.core.cli.console import say\ntime.sleep(0.3)\n"
            "for _ in range(3):\n    say(('wrote', 'green'), ' /models/m.gguf')\n")
    rich_code = ("import time\nfrom rich.console import Console\ntime.sleep(0.3)\nc = Console()\n"
                 "for _ in range(3):\n    c.print('[green]wrote[/green] /models/m.gguf')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    for source in (rich_code, code):
        child = subprocess.Popen([sys.executable, "-c", source], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env)
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()  # the reader goes away before the first line
        err = child.stderr.read().decode()
        assert child.wait(timeout=60) == 1 and "Traceback" not in err and "Exception ignored" not in err, err


def test_register_modelfile_names_its_path_with_brackets(tiny_qwen2: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`ftwiz register m.gguf --modelfile 'Modelfile [v2]'` said 'wrote Modelfile ' and 'next: ollama create
    NAME -f Modelfile ': a command that fails when copied."""
    from ftwiz.core.cli import main
    from ftwiz.core.export.convert import convert_to_gguf

    gguf = convert_to_gguf(tiny_qwen2, tmp_path / "m.gguf", "F16")
    modelfile = tmp_path / "Modelfile [v2]"
    capsys.readouterr()
    assert main(["register", str(gguf), "--name", "m", "--modelfile", str(modelfile)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"wrote {modelfile} next: ollama create m -f '{modelfile}'" in shown, shown
    assert modelfile.is_file()
