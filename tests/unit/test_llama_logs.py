"""llama.cpp's warnings go to Python logging at their real level, not to stderr (where they would draw over
the wizard and read like failures in `ftwiz export --verify`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")


def test_llama_cpp_warnings_are_logged_not_printed(tiny_llama: Path, tmp_path: Path, capfd,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from ftwiz.core import llama_logs
    from ftwiz.core.export.convert import convert_to_gguf
    from ftwiz.core.export.verify import _load_llama

    gguf = convert_to_gguf(tiny_llama, tmp_path / "m.gguf", "F16")
    capfd.readouterr()
    llm = _load_llama(gguf, n_ctx=64)
    try:
        with caplog.at_level(logging.WARNING, logger=llama_logs.log.name):
            ids = llm.tokenize(b"<|begin_of_text|>hi", add_bos=True, special=True)  # BOS twice: a warning
    finally:
        llm.close()
    assert ids[:2] == [ids[0], ids[0]]
    assert capfd.readouterr().err == ""
    warnings = [r for r in caplog.records if r.name == "ftwiz.llama_cpp" and r.levelno == logging.WARNING]
    assert any("2 BOS tokens" in r.getMessage() for r in warnings)
    assert llama_logs.log.level == logging.ERROR  # quiet by default once caplog restores it
