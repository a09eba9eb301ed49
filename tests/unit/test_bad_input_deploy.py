"""Bad input a careless new user gives the serving side of the CLI (serve, register, chat, service, vllm, eval of a
GGUF, export --adapter-only): each gets an error naming the file or option and what to do (exit status 2), never
a Python traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_cli import ftwiz, gguf_with_tensors, one_line, refused


def test_a_cut_off_gguf_is_named_by_serve_register_and_chat(tmp_path: Path) -> None:
    # an interrupted copy: the header reads fine, the tensor data stops half way; llama.cpp said only
    # "Failed to load model from file" (serve printed the server's traceback, register raised one)
    whole = gguf_with_tensors(tmp_path / "whole.gguf")
    cut = tmp_path / "my model ü.gguf"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for verb in ("serve", "register", "chat"):
        err = refused(ftwiz(verb, str(cut), *(["--force"] if verb != "chat" else [])))
        assert f"{cut}: the GGUF file is cut off: it has 16.4 KiB of the 32.7 KiB its tensors need" in err, verb
        assert "fix: copy it again, or export it again with `ftwiz export`" in err

    from ftwiz.core.gguf_info import cut_off

    assert cut_off(whole) is None and cut_off(cut) == (whole.stat().st_size, cut.stat().st_size)
    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model\n", encoding="utf-8")
    assert "not a readable GGUF file: missing GGUF magic" in refused(ftwiz("serve", str(text), "--force"))


def test_serve_on_a_port_in_use_says_so_before_loading(tmp_path: Path) -> None:
    import socket

    gguf_path = gguf_with_tensors(tmp_path / "model.gguf")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = refused(ftwiz("serve", str(gguf_path), "--port", str(port), "--force"))
    assert f"error: --port: port {port} on 127.0.0.1 is already in use" in err
    assert "fix: pick another --port (or leave it out to get a free one)" in err


def test_chat_and_serve_refuse_a_context_or_thread_count_below_one(tmp_path: Path) -> None:
    # --n-ctx -1 said "llama.cpp could not load the GGUF ... it may be truncated"; --max-tokens 0 was ignored
    gguf_path = gguf_with_tensors(tmp_path / "model.gguf")
    for verb, option, value in (("chat", "--n-ctx", "-1"), ("chat", "--max-tokens", "0"), ("serve", "--n-ctx", "0"),
                                ("serve", "--threads", "0")):
        err = refused(ftwiz(verb, str(gguf_path), option, value, "--force"))
        assert f"error: {option} {value} must be at least 1" in err, (verb, option)
        assert f"fix: leave {option} out for the default, or give a positive number" in err and "truncated" not in err


def test_register_refuses_a_zero_context_and_an_adapter_that_is_no_gguf(tmp_path: Path) -> None:
    # both were written into the Modelfile as given, for `ollama create` to fail on (or to ignore num_ctx 0)
    gguf_path = gguf_with_tensors(tmp_path / "model.gguf")
    modelfile = tmp_path / "Modelfile"
    err = refused(ftwiz("register", str(gguf_path), "--num-ctx", "0", "--modelfile", str(modelfile)))
    assert "error: --num-ctx 0 must be at least 1" in err
    notes = tmp_path / "adapter.gguf"
    notes.write_text("not an adapter\n", encoding="utf-8")
    err = refused(ftwiz("register", str(gguf_path), "--adapter", str(notes), "--modelfile", str(modelfile)))
    assert f"error: {notes}: not a readable GGUF file: missing GGUF magic" in err
    assert not modelfile.exists()


def test_service_install_refuses_a_cut_off_gguf_and_a_zero_context(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # both were written into a unit whose server then failed at every start, restarted by systemd forever
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    whole = gguf_with_tensors(tmp_path / "whole.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole.read_bytes()[:-1000])
    err = refused(ftwiz("service", "install", str(cut), "--no-start"))
    assert f"error: {cut}: the GGUF file is cut off" in err
    err = refused(ftwiz("service", "install", str(whole), "--no-start", "--n-ctx", "0"))
    assert "error: --n-ctx 0 must be at least 1" in err
    assert not list((tmp_path / "config").rglob("*.service"))


def test_vllm_refuses_a_port_or_gpu_memory_that_cannot_be(ftwiz_env: dict[str, Path]) -> None:
    # it printed `vllm serve ... --port 70000`, and said a model "does not fit a -3 GB GPU"
    err = refused(ftwiz("vllm", "demo", "--port", "70000"))
    assert "error: --port 70000 is not a TCP port" in err and "vllm serve" not in err
    err = refused(ftwiz("vllm", "demo", "--gpu-memory-gb", "-3"))
    assert "error: --gpu-memory-gb -3 is not a plausible amount of GPU memory" in err


def test_serve_refuses_a_port_or_host_it_cannot_bind(tmp_path: Path) -> None:
    gguf_path = gguf_with_tensors(tmp_path / "model.gguf")
    err = refused(ftwiz("serve", str(gguf_path), "--port", "70000", "--force"))  # an OverflowError traceback
    assert "error: --port 70000 is not a TCP port" in err
    # an address this machine does not have (TEST-NET-1, only bound, never sent to): the server's log tail and
    # "check the GGUF with `ftwiz export --verify`"
    err = refused(ftwiz("serve", str(gguf_path), "--host", "192.0.2.1", "--force"))
    assert "error: --host 192.0.2.1 is not an address of this machine" in err and "verify" not in err


def test_eval_names_a_cut_off_gguf_and_a_folder_as_forgetting_text(tmp_path: Path) -> None:
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.evaluate.backends import load_gguf
    from ftwiz.core.evaluate.runner import general_text

    whole = gguf_with_tensors(tmp_path / "whole.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(FtwizError, match="the GGUF file is cut off"):  # "llama.cpp could not load ... Failed to load"
        load_gguf(cut)
    with pytest.raises(FtwizError) as caught:  # --forgetting FOLDER: "does not exist"
        general_text(str(tmp_path))
    assert one_line(caught.value.render()).startswith(f"{tmp_path} is a folder fix: give a UTF-8 text")


def test_export_adapter_only_refuses_flags_it_would_ignore(ftwiz_env: dict[str, Path]) -> None:
    # --adapter-only --quant Q4_K_M wrote an F32 adapter and said nothing of the Q4_K_M asked for
    run = ftwiz_env["runs"] / "adapter-flags"
    (run / "adapter").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [demo]\n", encoding="utf-8")
    err = refused(ftwiz("export", "adapter-flags", "--adapter-only", "--quant", "Q4_K_M"))
    assert "error: --quant would be ignored: --adapter-only writes the LoRA adapter as F32 and checks nothing" in err
    assert "fix: leave --quant out" in err
    assert "--verify would be ignored" in refused(ftwiz("export", "adapter-flags", "--adapter-only", "--verify"))
    assert not (run / "export").exists()


def test_chat_with_a_mistyped_run_name_and_no_ollama_says_both(tmp_path: Path, ftwiz_env: dict[str, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # it opened "chatting with ollama:my-rnu" and said "Ollama is not installed" only after the first question
    from ftwiz.core.deploy.server import free_port

    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    err = refused(ftwiz("chat", "my-rnu", "--once", "hello"))
    assert f"error: MODEL: 'my-rnu' is not a .gguf file or a run in {ftwiz_env['runs']}, so it would be an Ollama " \
           "model, but Ollama is" in err
    assert f"fix: for a run, check its name (the folders in {ftwiz_env['runs']}); for an Ollama model:" in err
