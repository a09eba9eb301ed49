"""``ftwiz serve`` of a GGUF moved out of its run folder renders with the thinking choice the run trained with.

The export writes the recipe's ``enable_thinking`` into the GGUF (``ftwiz.enable_thinking``) and ``ftwiz chat``
reads it there, but ``ftwiz serve`` (and the wizard's Serve, and the printed ``llama-server`` command) looked
only for a run folder around the file: moved to ~/models, a Qwen3 fine-tune trained with thinking off was
served with its template's default, thinking on. Oracle: the key in the file, read with gguf-py's own reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


class _Started(Exception):
    """Raised by the Popen stand-in once it has seen the server's command line."""


def test_serve_takes_enable_thinking_from_a_moved_gguf(tiny_qwen2: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import ftwiz.core.deploy.server as server
    import gguf
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.trained_context import TrainedContext

    moved = tmp_path / "models" / "aria.gguf"  # no run folder around it: only the file knows
    moved.parent.mkdir()
    convert_to_gguf(tiny_qwen2, moved, "F16", extra_keys=TrainedContext("aria", None, False, 512).gguf_keys())
    field = gguf.GGUFReader(moved).fields["ftwiz.enable_thinking"]
    recorded = bool(field.parts[field.data[0]][0])
    assert recorded is False
    started: list[list[str]] = []

    def popen(cmd: list[str], **_kwargs: object) -> None:
        started.append(cmd)
        raise _Started

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    with pytest.raises(_Started):
        server.start_server(moved)  # what `ftwiz serve` and the wizard's Serve start
    cmd = started[0]
    assert json.loads(cmd[cmd.index("--chat_template_kwargs") + 1]) == {"enable_thinking": recorded}
    printed = server.llama_server_command(moved)  # the llama-server line `ftwiz serve` prints
    assert "--chat-template-kwargs '{\"enable_thinking\": false}'" in printed
