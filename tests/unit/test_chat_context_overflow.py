"""A chat that outgrows its context: said as an error with the fix, not a traceback; and a context that is not a
multiple of 256 tokens (``--n-ctx 300``, or a trained cutoff_len of 1000) no longer crashes inside it.

Why the second: llama.cpp allocates every context rounded up to a multiple of 256 tokens, while llama-cpp-python
sizes its token buffer by the number it was given, so a conversation of 300 to 512 tokens with ``--n-ctx 300``
died with numpy's "could not broadcast input array" traceback. Before the fix ``ftwiz chat`` printed a traceback
in both cases (ending the interactive chat). Oracle for a conversation's length: transformers' apply_chat_template
on the model's own template and tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny_gguf(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ftwiz.core.export.pipeline import export_model

    out = tmp_path_factory.mktemp("ctx-gguf") / "tiny.gguf"
    return Path(export_model(tiny_qwen2, ["F16"], out=out).gguf_paths[0])


def _message_of(tiny_qwen2: Path, low: int, high: int) -> str:
    """A user message whose full rendering (generation prompt included) is between low and high tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2)
    for words in range(10, 2000, 10):
        text = "the cat sat on a mat " * words
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True,
                                      return_dict=True)["input_ids"]
        if low < len(ids) < high:
            return text
    raise AssertionError(f"no message between {low} and {high} tokens")


def test_a_conversation_between_the_given_and_the_allocated_context_is_answered(tiny_gguf: Path,
                                                                               tiny_qwen2: Path) -> None:
    from ftwiz.core.deploy.chat import ChatSession

    session = ChatSession(tiny_gguf, n_ctx=300, temperature=0, max_tokens=4, seed=0)
    try:
        assert session.backend.context.n_ctx == 512  # what llama.cpp holds, said as such
        assert "rounded up" in session.backend.context.reason
        session.reply(_message_of(tiny_qwen2, 320, 480))  # a numpy broadcast traceback before
        assert len(session.history) == 2
    finally:
        session.close()


def test_a_conversation_longer_than_the_context_is_an_error_with_the_fix(tiny_gguf: Path, tiny_qwen2: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    from ftwiz.core.cli import main
    from ftwiz.core.deploy.chat import ChatSession
    from ftwiz.core.errors import FtwizError

    too_long = _message_of(tiny_qwen2, 600, 900)
    session = ChatSession(tiny_gguf, n_ctx=512, temperature=0, max_tokens=4, seed=0)
    try:
        with pytest.raises(FtwizError) as caught:
            session.reply(too_long)
        assert "no longer fits the context of 512 tokens" in caught.value.what
        assert "/reset" in (caught.value.fix or "") and "--n-ctx" in (caught.value.fix or "")
        assert session.history == []  # the turn did not happen: the chat goes on
        assert session.reply("hi") is not None
        assert len(session.history) == 2
    finally:
        session.close()

    code = main(["chat", str(tiny_gguf), "--once", too_long, "--n-ctx", "512", "--max-tokens", "4"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no longer fits the context" in err and "Traceback" not in err


def test_the_interactive_chat_says_it_on_a_line_of_its_own_with_the_fix_and_goes_on(
        tiny_gguf: Path, tiny_qwen2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The error followed the 'tiny>' prompt, as if the model had said it, and came without its fix: '/reset'
    (what to type next) was only said by --once."""
    import io

    from ftwiz.core.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(_message_of(tiny_qwen2, 600, 900) + "\nhi\n/exit\n"))
    assert main(["chat", str(tiny_gguf), "--n-ctx", "512", "--max-tokens", "2", "--temperature", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    errors = [i for i, line in enumerate(lines) if "no longer fits the context" in line]
    assert len(errors) == 1 and lines[errors[0]].startswith("error:"), lines
    assert not lines[errors[0] - 1].strip().endswith(">"), lines  # no model label left empty above the error
    assert lines[errors[0] + 1].strip().startswith("fix: start over with /reset"), lines
    assert sum(line.startswith("you>") for line in lines) >= 2  # the chat went on to the next question
