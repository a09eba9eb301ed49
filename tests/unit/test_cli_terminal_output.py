"""What `ftwiz export` shows on a terminal: the spinner names the file being written with its brackets, and a
report is styled exactly where rich's console would style it (a log marked not-a-terminal keeps each path
on one line)."""

from __future__ import annotations

import io
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

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(console_module, "console", Console(file=screen, force_terminal=True, width=200),
                        raising=False)
    out = tmp_path / "m [bold]v2.gguf"
    assert main(["export", str(tiny_qwen2), "--quant", "F16", "--out", str(out)]) == 0
    shown = ANSI.sub("", screen.getvalue())
    assert "writing m [bold]v2.gguf" in shown, shown
    assert f"wrote {out} (" in shown
