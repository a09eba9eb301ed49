"""A Modelfile written for ``ollama create -f`` gives Ollama the SYSTEM it was given, or is refused.

Oracle: Ollama's Modelfile parser (parser/parser.go) copies a value's characters only when Go's
``strconv.IsPrint`` accepts them (Unicode letters, marks, numbers, punctuation, symbols, and the ASCII
space); tabs and line breaks inside a triple-quoted value are kept. Before: ftwiz wrote a SYSTEM holding a
no-break space or the zero-width joiner of an emoji sequence, said the Modelfile was checked, and
``ollama create -f`` silently prompted the model without those characters.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.deploy.modelfile import build_modelfile
from ftwiz.core.errors import FtwizError


def _go_printable(ch: str) -> bool:
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def _system_as_ollama_parses_it(modelfile: str) -> str:
    value = modelfile.split('SYSTEM """', 1)[1].rsplit('"""', 1)[0]
    return "".join(ch for ch in value if ch in "\t\n\r" or _go_printable(ch))


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2: Path) -> Path:
    """A ChatML model's GGUF (its template has a system turn)."""
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(tiny_qwen2, tmp_path_factory.mktemp("gguf") / "qwen2.gguf", out_type="F16")


@pytest.mark.parametrize("system", ["Réponds en français !\n\tSois bref.", "Smile \U0001F600\ufe0f, 日本語 ok"])
def test_a_printable_system_reaches_ollama_unchanged(gguf: Path, system: str) -> None:
    assert _system_as_ollama_parses_it(build_modelfile(gguf, system=system)) == system


@pytest.mark.parametrize("system, code", [("Réponds\u00a0!", "U+00A0"),
                                          ("Family: \U0001F468\u200d\U0001F469\u200d\U0001F467", "U+200D"),
                                          ("Hyphen\u00adated words", "U+00AD")])
def test_a_system_the_parser_would_change_is_refused_with_the_character(gguf: Path, system: str, code: str) -> None:
    try:
        text = build_modelfile(gguf, system=system)
    except FtwizError as error:
        assert code in str(error) and "ftwiz register" in error.fix
        return
    assert _system_as_ollama_parses_it(text) == system  # fails: Ollama drops the character without a word


def test_register_modelfile_writes_nothing_and_says_why(gguf: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "Modelfile"
    code = cli_main(["register", str(gguf), "--modelfile", str(out), "--system", "Be\u00a0brief."])
    assert code != 0 and not out.exists()
    assert "NO-BREAK SPACE (U+00A0)" in capsys.readouterr().err


def test_a_license_or_stop_string_the_parser_would_change_is_refused_too(gguf: Path) -> None:
    """LICENSE text and stop strings went unchecked: a no-break space in --license, or a zero-width joiner in a stop
    string, was dropped by `ollama create -f` without a word. Oracle: tests/ollama_modelfile.py (Ollama's parser)."""
    import dataclasses

    from ftwiz.core.deploy.modelfile import modelfile_spec
    from ollama_modelfile import parse

    spec = modelfile_spec(gguf)
    for changed, name, given, code in ((dict(license="MIT\u00a0License"), "license", "MIT\u00a0License", "U+00A0"),
                                       (dict(stops=["<|im_end|>", "A\u200dB"]), "stop", "A\u200dB", "U+200D")):
        try:
            text = dataclasses.replace(spec, **changed).file_text()
        except FtwizError as error:
            assert code in str(error) and "ftwiz register" in error.fix
            continue
        assert given in [value for key, value in parse(text) if key == name]  # fails: Ollama drops the character
