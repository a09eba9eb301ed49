"""The context length ``ftwiz serve``, ``ftwiz chat`` and the wizard give a GGUF when the user names none.

`ftwiz serve` started every model with 2048 tokens, whatever it was trained for, while `ftwiz chat` took the
model's context_length capped at 4096. Now one rule (:func:`ftwiz.core.deploy.context_size.choose_n_ctx`) picks it
for both: the GGUF's ``<arch>.context_length`` capped at 4096, or the longer ``ftwiz.cutoff_len`` the fine-tune was
trained with (never beyond the model's window); ``--n-ctx`` always wins. The GGUFs are written here with gguf-py's
own ``GGUFWriter`` (the oracle for what the file holds is gguf-py's ``GGUFReader``); no model is loaded: the
server's ``Popen`` and chat's ``Llama`` are stand-ins that record what they were given.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from ftwiz.core.deploy.context_size import CONTEXT_CAP, FALLBACK, choose_n_ctx, llama_cpp_n_ctx
from meta_gguf import write_gguf


def _reader_value(path: Path, key: str) -> int | None:
    import gguf

    field = gguf.GGUFReader(path).fields.get(key)
    return None if field is None else int(field.parts[field.data[0]][0])


@pytest.mark.parametrize(("context_length", "cutoff_len", "expected", "said"), [
    (32768, None, CONTEXT_CAP, "context_length 32768, capped at 4096"),  # a Qwen2.5 window: not a 32k KV cache
    (1024, None, 1024, "the model's context_length 1024"),  # a short model is not given more than it has
    (None, None, FALLBACK, "records no context_length"),
    (32768, 8192, 8192, "trained with cutoff_len 8192"),  # a long-context fine-tune gets what it was trained for
    (4096, 16384, 4096, "at most the model's context_length 4096"),  # never beyond the model's window
    (None, 8192, 8192, "trained with cutoff_len 8192"),
    (32768, 512, CONTEXT_CAP, "trained with cutoff_len 512, which fits"),  # a short cutoff does not shrink chat
])
def test_the_rule_reads_the_trained_length_and_the_models_window(tmp_path: Path, context_length: int | None,
                                                                 cutoff_len: int | None, expected: int,
                                                                 said: str) -> None:
    path = write_gguf(tmp_path / "m.gguf", context_length=context_length, cutoff_len=cutoff_len)
    assert _reader_value(path, "llama.context_length") == context_length  # gguf-py reads back what was written
    assert _reader_value(path, "ftwiz.cutoff_len") == cutoff_len
    choice = choose_n_ctx(path)
    assert choice.n_ctx == expected
    assert said in choice.reason


def test_a_given_length_always_wins(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", context_length=32768, cutoff_len=8192)
    assert choose_n_ctx(path, 1000).n_ctx == 1000
    assert "--n-ctx" in choose_n_ctx(path, 1000).reason


class _Started(Exception):
    """Raised by the stand-ins once they have seen what the server or chat would load."""


@pytest.fixture()
def server_popen(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The server's command lines, recorded instead of started; `ftwiz serve`'s signal handlers restored after."""
    import ftwiz.core.deploy.server as server

    started: list[list[str]] = []

    def popen(cmd: list[str], **_kwargs: object) -> None:
        started.append(cmd)
        raise _Started

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield started
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _n_ctx(cmd: list[str]) -> int:
    return int(cmd[cmd.index("--n_ctx") + 1])


def test_ftwiz_serve_starts_the_server_with_the_trained_context_and_says_why(tmp_path: Path, server_popen,
                                                                             capsys) -> None:
    from ftwiz.core.cli import main as cli_main

    path = write_gguf(tmp_path / "long.gguf", context_length=32768, cutoff_len=8192)
    with pytest.raises(_Started):
        cli_main(["serve", str(path)])
    assert _n_ctx(server_popen[0]) == 8192  # was 2048 whatever the model was trained for
    out = capsys.readouterr().out
    assert "context 8192 tokens (trained with cutoff_len 8192)" in out
    with pytest.raises(_Started):
        cli_main(["serve", str(path), "--n-ctx", "3000"])
    assert _n_ctx(server_popen[1]) == 3072  # llama.cpp's window for 3000: a multiple of 256, said as such
    assert "context 3072 tokens (as given with --n-ctx, rounded up to a multiple of 256" in capsys.readouterr().out


def test_serve_and_chat_give_the_same_gguf_the_same_context(tmp_path: Path, server_popen,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp
    from ftwiz.core.cli import main as cli_main
    from ftwiz.core.deploy.server import start_server

    loaded: list[dict[str, object]] = []

    def llama(**kwargs: object) -> None:
        loaded.append(kwargs)
        raise _Started

    monkeypatch.setattr(llama_cpp, "Llama", llama)
    for context_length, cutoff_len in ((32768, None), (2048, None), (65536, 12000)):
        path = write_gguf(tmp_path / f"m-{context_length}.gguf", context_length=context_length, cutoff_len=cutoff_len)
        with pytest.raises(_Started):
            cli_main(["chat", str(path), "--once", "hi"])
        with pytest.raises(_Started):
            start_server(path)  # the core function with no n_ctx, as a script calls it
        assert loaded[-1]["n_ctx"] == _n_ctx(server_popen[-1]) == llama_cpp_n_ctx(choose_n_ctx(path).n_ctx)


def test_a_gguf_without_the_suffix_still_gets_its_trained_context(tmp_path: Path) -> None:
    blob = write_gguf(tmp_path / "sha256-0123abcd", context_length=32768, cutoff_len=8192)  # as Ollama stores it
    assert choose_n_ctx(blob).n_ctx == 8192


def test_a_given_length_beyond_the_models_window_is_refused_before_anything_is_allocated(
        tmp_path: Path, server_popen, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import llama_cpp
    from ftwiz.core.cli import main as cli_main

    loaded: list[dict[str, object]] = []

    def llama(**kwargs: object) -> None:
        loaded.append(kwargs)
        raise _Started

    monkeypatch.setattr(llama_cpp, "Llama", llama)
    path = write_gguf(tmp_path / "m.gguf", context_length=1024)
    # --n-ctx 2000000000 on a 1 MiB model: llama-cpp-python was killed for memory (SIGKILL) before it said a word
    assert cli_main(["serve", str(path), "--n-ctx", "2000000000"]) == 2
    assert cli_main(["chat", str(path), "--once", "hi", "--n-ctx", "1025"]) == 2
    err = capsys.readouterr().err
    assert "--n-ctx 2000000000 is more than the model's context_length 1024" in err
    assert "--n-ctx 1025 is more than the model's context_length 1024" in err and "at most 1024" in err
    assert server_popen == [] and loaded == []  # nothing was started or loaded
    with pytest.raises(_Started):
        cli_main(["chat", str(path), "--once", "hi", "--n-ctx", "1024"])  # the whole window is still allowed
    assert loaded[-1]["n_ctx"] == 1024
    unrecorded = write_gguf(tmp_path / "no-window.gguf", context_length=None)
    assert choose_n_ctx(unrecorded, 100000).n_ctx == 100000  # no window recorded: the user's word stands


def test_register_refuses_a_num_ctx_beyond_the_models_window_as_serve_refuses_n_ctx(tmp_path: Path, capsys) -> None:
    """`register --num-ctx 100000` wrote num_ctx 100000 into the Modelfile of a 1024-token model; Ollama caps it at
    the window without a word, while serve and chat refuse the same length."""
    from ftwiz.core.cli import main as cli_main

    path = write_gguf(tmp_path / "m.gguf", context_length=1024)
    modelfile = tmp_path / "Modelfile"
    assert cli_main(["register", str(path), "--num-ctx", "100000", "--modelfile", str(modelfile)]) == 2
    err = capsys.readouterr().err
    assert "--num-ctx 100000 is more than the model's context_length 1024" in err and "at most 1024" in err
    assert not modelfile.exists()
    from ftwiz.core.deploy.register_step import register_inputs

    assert register_inputs(path, num_ctx=1024).num_ctx == 1024  # the whole window is still allowed


def test_a_context_that_does_not_fit_in_memory_names_n_ctx_not_a_truncated_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """llama-cpp-python loads the weights, then raises 'Failed to create llama_context' (its _internals.py) when
    the KV cache cannot be allocated; chat said the GGUF 'may be truncated' and sent the user to export --verify."""
    import llama_cpp
    from ftwiz.core.cli import main as cli_main

    def llama(**kwargs: object) -> None:
        raise ValueError("Failed to create llama_context")

    monkeypatch.setattr(llama_cpp, "Llama", llama)
    path = write_gguf(tmp_path / "m.gguf", context_length=32768)
    assert cli_main(["chat", str(path), "--once", "hi", "--n-ctx", "32768"]) == 2
    err = capsys.readouterr().err
    assert "could not allocate its context of 32768 tokens (as given with --n-ctx)" in err, err
    assert "fix: give a smaller --n-ctx" in err and "truncated" not in err
