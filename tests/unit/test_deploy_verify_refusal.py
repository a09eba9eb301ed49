"""The refusal of a GGUF whose ``export --verify`` failed lives in the core serve and chat paths, not in the CLI.

The CLI called ``require_verified`` itself before serving or chatting, so the wizard (which calls the core) served
and chatted with a GGUF the CLI refused. Now ``serve_inputs`` and ``ChatSession`` (what both call) refuse it with
:class:`VerifyFailedRefusal` before anything is loaded, and go on only when forced (``--force``, the wizard's
"... anyway"). The record is written as ``export --verify`` writes it beside the GGUF; nothing is loaded: chat's
``Llama`` is a stand-in that records whether it was reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.export.verify import Check, VerifyReport
from ftwiz.core.export.verify_record import VerifyFailedRefusal, record_path
from meta_gguf import write_gguf


def _gguf_with_record(tmp_path: Path, *, passed: bool) -> Path:
    path = write_gguf(tmp_path / "model-Q8_0.gguf", context_length=2048)
    report = VerifyReport(gguf_path=str(path), hf_model_dir="/hf/model", quant="Q8_0", checks=[
        Check(name="tokenization", passed=passed, detail="ids differ in prompt 2 at token 5"),
        Check(name="logits", passed=True)])
    record_path(path).write_text(report.to_json())  # beside the GGUF, after it, as export_model writes it
    return path


def test_serve_inputs_refuses_a_failed_gguf_naming_the_check_and_the_way_on(tmp_path: Path) -> None:
    from ftwiz.core.deploy.serve_step import serve_inputs

    path = _gguf_with_record(tmp_path, passed=False)
    with pytest.raises(VerifyFailedRefusal) as info:
        serve_inputs(str(path))
    assert "tokenization (ids differ in prompt 2 at token 5)" in info.value.what
    assert "--force" in info.value.fix and "ftwiz serve" in info.value.fix
    assert serve_inputs(str(path), force_unverified=True).gguf == path.resolve()


def test_serve_inputs_takes_a_passed_gguf(tmp_path: Path) -> None:
    from ftwiz.core.deploy.serve_step import serve_inputs

    path = _gguf_with_record(tmp_path, passed=True)
    assert serve_inputs(str(path)).context.n_ctx == 2048


@pytest.fixture()
def llama_loads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The GGUFs chat asked llama.cpp to load (a stand-in: nothing is loaded)."""
    import llama_cpp

    loaded: list[dict[str, object]] = []

    class Llama:
        def __init__(self, **kwargs: object) -> None:
            loaded.append(kwargs)

        def close(self) -> None:
            pass

    monkeypatch.setattr(llama_cpp, "Llama", Llama)
    return loaded


def test_chat_session_refuses_a_failed_gguf_before_loading_it(tmp_path: Path, llama_loads) -> None:
    from ftwiz.core.deploy.chat import ChatSession

    path = _gguf_with_record(tmp_path, passed=False)
    with pytest.raises(VerifyFailedRefusal, match="tokenization") as info:
        ChatSession(str(path))
    assert "ftwiz chat" in info.value.fix
    assert llama_loads == []  # refused before llama.cpp was asked for memory
    with ChatSession(str(path), force_unverified=True):
        pass
    assert [Path(str(kw["model_path"])) for kw in llama_loads] == [path.resolve()]


def test_service_install_refuses_a_failed_gguf_unless_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys) -> None:
    from ftwiz.core.cli import main as cli_main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = _gguf_with_record(tmp_path, passed=False)
    unit = tmp_path / "config" / "systemd" / "user" / "ftwiz-tuned.service"
    argv = ["service", "install", str(path), "--name", "tuned", "--no-start"]
    assert cli_main(argv) != 0
    err = capsys.readouterr().err
    assert "export --verify" in err and "tokenization" in err and "ftwiz service install" in err
    assert not unit.exists()  # no unit that would serve it at every login
    assert cli_main([*argv, "--force"]) == 0
    assert "--n_ctx 2048" in unit.read_text()  # the context `ftwiz serve` picks for it (its context_length)


def test_a_damaged_record_is_a_refusal_that_force_and_the_wizard_get_past(tmp_path: Path, llama_loads,
                                                                          capsys) -> None:
    from ftwiz.core.cli import main as cli_main
    from ftwiz.core.deploy.serve_step import serve_inputs

    path = write_gguf(tmp_path / "model-Q8_0.gguf", context_length=2048)
    record_path(path).write_text("{ not json")  # a record cut off by a full disk or an editor
    # a refusal the wizard asks about ("Serve anyway?"): it was a plain error, and --force did not get past it
    with pytest.raises(VerifyFailedRefusal) as info:
        serve_inputs(str(path))
    assert "--force" in info.value.fix and "delete model-Q8_0.gguf.verify.json" in info.value.fix
    assert serve_inputs(str(path), force_unverified=True).gguf == path.resolve()
    assert cli_main(["chat", str(path), "--once", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.count(str(record_path(path))) == 1  # the record is named once, not twice
    assert llama_loads == []
    from ftwiz.core.deploy.chat import ChatSession

    with ChatSession(str(path), force_unverified=True):  # --force
        pass
    assert [Path(str(kw["model_path"])) for kw in llama_loads] == [path.resolve()]
