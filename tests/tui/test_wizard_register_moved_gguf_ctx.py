"""The wizard's Register gives Ollama the context a moved GGUF was trained with, not the wizard recipe's.

A GGUF moved out of its run folder carries its run's ``cutoff_len`` in ``ftwiz.cutoff_len``; ``ftwiz register``
(no recipe) used it for ``num_ctx``, but the wizard's deploy step passes its own recipe, whose ``cutoff_len``
won. A trained length longer than the 4096 tokens a model's window is capped at is used in full (serve and chat
do the same), so a model with a 32k window trained at 6000 tokens shows which length was taken. Oracle: the key
in the file, read back with gguf-py's own reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import open_deploy, screen_text, wait_until


async def test_wizard_register_takes_num_ctx_from_the_moved_gguf(make_app, fake_ollama, tiny_qwen2: Path,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import shutil

    import gguf
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.trained_context import TrainedContext

    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    app = make_app(offer_resume=False)
    trained_len = 6000  # the run trained with another length than the wizard's recipe, beyond the 4096 cap
    assert app.load_recipe().cutoff_len != trained_len
    long_window = tmp_path / "long-window"
    shutil.copytree(tiny_qwen2, long_window)
    config = json.loads((long_window / "config.json").read_text())
    (long_window / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 32768}))
    moved = tmp_path / "models" / "aria.gguf"  # no run folder, no registry record: only the file knows
    moved.parent.mkdir()
    convert_to_gguf(long_window, moved, "F16", extra_keys=TrainedContext("aria", None, None, trained_len).gguf_keys())
    field = gguf.GGUFReader(moved).fields["ftwiz.cutoff_len"]
    recorded = int(field.parts[field.data[0]][0])
    assert recorded == trained_len
    async with app.run_test(size=(100, 30)) as pilot:
        await open_deploy(app, pilot, moved)
        app.screen.query_one("#ollama-name").value = "aria"
        app.screen.query_one("#register").press()
        await pilot.pause()
        await wait_until(pilot, lambda: "registered in Ollama as aria" in screen_text(app), what="registration")
    assert fake_ollama.models["aria"]["parameters"]["num_ctx"] == recorded
