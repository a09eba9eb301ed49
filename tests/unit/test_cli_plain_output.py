"""What `ftwiz export` prints: plain, unwrapped lines to a pipe or log (without loading rich), and styled lines
on a terminal where brackets in a path still print as they are."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ftwiz.core.cli import console as console_module


def test_export_to_a_pipe_prints_the_whole_path_on_one_line_without_rich(tiny_qwen2: Path, tmp_path: Path) -> None:
    out = tmp_path / ("a-folder-name-long-enough-that-an-80-column-console-would-wrap-it-" * 2) / "m [v2].gguf"
    code = ("import sys\nfrom ftwiz.core.cli import main\ncode = main(sys.argv[1:])\n"
            "print('RICH', sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\nsys.exit(code)\n")
    env = {**os.environ, "FTWIZ_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run([sys.executable, "-c", code, "export", str(tiny_qwen2), "--quant", "F16", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"wrote {out} (") for line in lines), done.stdout  # one line, brackets kept
    assert out.is_file()
    assert "RICH []" in lines  # nothing to draw, so rich (0.05-0.1 s of imports) is not loaded


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_styled_and_brackets_in_user_text_survive(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    # set in the module's namespace, removed afterwards: setattr would first make the lazy console (while stdout
    # is this fake terminal, so it colours) and leave it behind for the tests that follow
    monkeypatch.setitem(vars(console_module), "console", Console(file=screen, force_terminal=True, width=200))
    console_module.say(("wrote", "green"), " /models/m [v2].gguf (1.0 MiB)")
    shown = screen.getvalue()
    assert "\x1b[" in shown  # coloured
    assert "/models/m [v2].gguf (1.0 MiB)" in shown  # not eaten as a style tag


def test_a_pipe_gets_plain_text_unless_colour_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stdout", pipe)
    console_module.say(("FAIL", "red"), " next token: 12 != 13")
    assert pipe.getvalue() == "FAIL next token: 12 != 13\n"
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert console_module.styled(pipe)


def test_json_and_the_verify_record_name_the_gguf_by_its_absolute_path(tiny_qwen2: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`--out m.gguf` from the working folder: a script reading the JSON, and `ftwiz register`/`chat` reading
    the record from another folder, must find the file."""
    import json

    from ftwiz.core.cli import main

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["export", str(tiny_qwen2), "--quant", "F16", "--out", "m.gguf", "--verify", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gguf_paths"] == [str(work / "m.gguf")]
    record = json.loads((work / "m.gguf.verify.json").read_text())
    assert record["gguf_path"] == str(work / "m.gguf")


def test_events_to_a_file_keep_the_report_and_json(tiny_qwen2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`--events FILE` adds a log for a script; the person at the terminal still gets the result (it used to
    print nothing at all, even for --json or an error)."""
    import json

    from ftwiz.core.cli import main
    from ftwiz.core.events import read_events

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    out, log = tmp_path / "m.gguf", tmp_path / "events.jsonl"
    assert main(["export", str(tiny_qwen2), "--quant", "F16", "--out", str(out), "--events", str(log), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gguf_paths"] == [str(out)]
    assert [e.type for e in read_events(log)][-1] == "finished"
    assert main(["export", str(tmp_path / "no-such-model"), "--events", str(log)]) == 2
    assert "error:" in capsys.readouterr().err
    assert [e.type for e in read_events(log)][-1] == "failed"


def test_json_and_events_on_stdout_are_refused_together(tiny_qwen2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.cli import main

    assert main(["export", str(tiny_qwen2), "--events", "-", "--json"]) == 2
    assert "--events events.jsonl" in capsys.readouterr().err


def test_every_verbs_console_writes_long_lines_whole_to_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verbs that print through rich (doctor, plan, data, ...) to a pipe or log: a long path stays on one line
    instead of being broken at rich's 80 columns."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setattr(console_module, "_consoles", {})
    log = io.StringIO()
    monkeypatch.setattr(sys, "stdout", log)
    path = "/data/" + "a-long-folder-name/" * 8 + "train.jsonl"
    console_module.console.print(f"reading {path}")
    assert log.getvalue() == f"reading {path}\n"
