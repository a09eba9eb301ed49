"""Modelfiles read everything from the GGUF: template, BOS behaviour, and stop tokens that are control tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftwiz.core.deploy.modelfile import build_modelfile, modelfile_spec
from ftwiz.core.deploy.templates import ollama_prompt, probe_conversations
from ftwiz.core.errors import FtwizError
from ftwiz.core.gguf_info import read_gguf_info, read_metadata


@pytest.fixture(scope="module")
def phi3_gguf(shared_dir: Path) -> Path:
    return shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf"


def test_metadata_reader_agrees_with_gguf_reader(phi3_gguf: Path) -> None:
    from gguf import GGUFReader

    ours = read_metadata(phi3_gguf)
    theirs = {k: f.contents() for k, f in GGUFReader(phi3_gguf).fields.items() if not k.startswith("GGUF.")}
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert (list(ours[key]) == list(value)) if isinstance(value, list) else ours[key] == value, key


def test_phi3_modelfile_from_a_real_llamacpp_gguf(phi3_gguf: Path) -> None:
    info = read_gguf_info(phi3_gguf)
    text = build_modelfile(phi3_gguf, num_ctx=2048, license="MIT")
    assert f"FROM {phi3_gguf.resolve()}" in text
    stops = [line.split(" ", 2)[2].strip('"') for line in text.splitlines() if line.startswith("PARAMETER stop")]
    assert "<|end|>" in stops
    assert all(info.is_control(s) for s in stops)  # a non-control stop string could leak into answers
    assert "PARAMETER num_ctx 2048" in text and 'LICENSE """MIT"""' in text
    assert "SYSTEM" not in text
    # the template in the file is the checked one: it renders what the GGUF's own template renders
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert ollama_prompt(template, [{"role": "user", "content": "Hi"}]) == "<|user|>\nHi<|end|>\n<|assistant|>\n"


def test_bad_inputs_name_the_file(tmp_path: Path, phi3_gguf: Path) -> None:
    with pytest.raises(FtwizError, match="not found") as info:
        build_modelfile(tmp_path / "missing.gguf")
    assert "missing.gguf" in str(info.value.where)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(FtwizError, match="not a readable GGUF") as info:
        build_modelfile(junk)
    assert str(junk) in str(info.value.where)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(phi3_gguf.read_bytes()[:5000])
    with pytest.raises(FtwizError, match="not a readable GGUF"):
        build_modelfile(truncated)
    with pytest.raises(FtwizError, match="num_ctx"):
        build_modelfile(phi3_gguf, num_ctx=0)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2: Path, tiny_llama: Path) -> dict[str, tuple[Path, Path]]:
    convert = pytest.importorskip("ftwiz.core.export.convert", reason="the GGUF converter (export helper) is not there yet")
    out = tmp_path_factory.mktemp("gguf")
    return {name: (hf, convert.convert_to_gguf(hf, out / f"{name}.gguf", out_type="F16"))
            for name, hf in (("qwen2", tiny_qwen2), ("llama", tiny_llama))}


@pytest.mark.parametrize(("name", "family", "stop"), [("qwen2", "chatml", "<|im_end|>"), ("llama", "llama3", "<|eot_id|>")])
def test_template_from_exported_gguf_matches_hf(converted: dict[str, tuple[Path, Path]], name: str, family: str,
                                                stop: str) -> None:
    from transformers import AutoTokenizer

    hf_dir, gguf = converted[name]
    spec = modelfile_spec(gguf, system="You are terse.")
    assert spec.template.family == family and stop in spec.stops
    assert all(spec.info.is_control(s) for s in spec.stops)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    for messages in probe_conversations():
        expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if spec.info.add_bos and tok.bos_token and expected.startswith(tok.bos_token):
            expected = expected[len(tok.bos_token):]  # llama.cpp adds BOS as a token; the template must not repeat it
        assert ollama_prompt(spec.template.template, messages) == expected
    # the Modelfile SYSTEM reaches the prompt the way Ollama inserts it
    rendered = ollama_prompt(spec.template.template, [{"role": "user", "content": "Hi"}], system=spec.system)
    assert "You are terse." in rendered


@pytest.mark.parametrize("name", ["qwen2", "llama"])
def test_local_chat_formats_turns_exactly_as_training(converted: dict[str, tuple[Path, Path]], name: str) -> None:
    """`ftwiz chat` on a GGUF builds prompts from the embedded template: same text as HF, BOS once."""
    from ftwiz.core.deploy.chat import chat_formatter
    from transformers import AutoTokenizer

    hf_dir, gguf = converted[name]
    info = read_gguf_info(gguf)
    formatter, stops = chat_formatter(info)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    for messages in probe_conversations():
        response = formatter(messages=messages)
        assert response.prompt == tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert response.added_special  # llama-cpp-python then tokenizes without adding a second BOS
    assert stops and all(info.is_control(s) for s in stops)


def test_ollama_reads_back_every_value_as_written_quotes_backslashes_and_line_breaks(phi3_gguf: Path,
                                                                                      tmp_path: Path) -> None:
    """A backslash-escaped value reached Ollama with its backslashes (its parser only strips quotes), so a stop
    string or FROM path holding `"` or `\\` was another one. Oracle: Ollama's Modelfile parser's rules."""
    import dataclasses
    import shutil

    from ollama_modelfile import parse

    folder = tmp_path / "my models\\v2"
    folder.mkdir()
    gguf = shutil.copy(phi3_gguf, folder / 'phi "3".gguf')
    system = 'Answer as JSON: {"path": "C:\\\\temp"}\nEnd every answer with "done"'
    spec = modelfile_spec(gguf)
    stops = [*spec.stops, 'say "stop"', "a\\b", '"', "two words"]
    text = dataclasses.replace(spec, stops=stops, system=system).file_text()
    read = parse(text)
    assert ("model", str(Path(gguf).resolve())) in read
    assert [value for name, value in read if name == "stop"] == stops
    assert [value for name, value in read if name == "system"] == [system]
    assert [value for name, value in read if name == "template"] == [spec.template.template]
