"""``export --verify`` of a hub folder whose tokenizer.json transformers 5 rebuilds differently (TinyLlama's).

TinyLlama-1.1B-Chat-v1.0's tokenizer.json (written by transformers 4) prepends '▁' to every text segment,
also after ``</s>``; transformers 5's LlamaTokenizer puts it only at the very start. The GGUF follows the
file, as llama.cpp's converter does. Oracles: llama.cpp's tokenization of the GGUF (llama-cpp-python,
``vocab_only=True``) and the file's own pipeline (``tokenizers.Tokenizer.from_file``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chatml_llama import chatml_on_tinyllama_folder

TEXTS = [
    "Hello world",
    "  Indented line\nwith a newline",
    "<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>",
]


@pytest.fixture(scope="module")
def hub_tinyllama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama carrying TinyLlama's files exactly as the hub has them (its own template)."""
    folder = tmp_path_factory.mktemp("hub-tinyllama")
    chatml_on_tinyllama_folder(folder, template=None)
    return folder


def _export(model: Path, out: Path, *, verify: bool):
    from ftwiz.core.export.pipeline import export_model

    return export_model(model, ["F16"], out=out, verify=verify)


def _llama_ids(gguf_path: str, text: str) -> list[int]:
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=gguf_path, vocab_only=True, verbose=False)
    try:
        return list(vocab.tokenize(text.encode("utf-8"), add_bos=True, special=True))
    finally:
        vocab.close()


def test_direct_export_of_hub_tinyllama_passes_verify(hub_tinyllama: Path, tmp_path: Path) -> None:
    import transformers
    from tokenizers import Tokenizer

    result = _export(hub_tinyllama, tmp_path / "out", verify=True)
    report = result.reports[0]
    assert report.passed, [(c.name, c.detail) for c in report.checks]
    assert report.tokenization.passed and report.logits.passed and report.chat_template.passed and report.eos.passed
    reference = report.check("tokenizer_reference")
    assert reference.passed is None and "tokenizer.json" in reference.detail and "Prepend" in reference.detail

    # the oracles: llama.cpp tokenizes the GGUF as the file's own pipeline does...
    from_file = Tokenizer.from_file(str(hub_tinyllama / "tokenizer.json"))
    for text in TEXTS:
        assert _llama_ids(result.gguf_paths[0], text) == from_file.encode(text).ids, text
    # ...which is not what transformers 5 gives (the case this verify used to fail on): '▁' after </s>
    auto = transformers.AutoTokenizer.from_pretrained(hub_tinyllama)
    assert auto(TEXTS[2])["input_ids"] != from_file.encode(TEXTS[2]).ids


def test_a_wrong_gguf_tokenizer_still_fails_verify(hub_tinyllama: Path, tmp_path: Path, monkeypatch) -> None:
    """A GGUF written with transformers 5's '▁' placement (add_space_prefix false) instead of the file's."""
    from ftwiz.core.export import vocab
    from ftwiz.core.export.verify import verify_gguf

    monkeypatch.setattr(vocab, "prepend_scheme", lambda tokenizer_json: "first")
    gguf_path = _export(hub_tinyllama, tmp_path / "out", verify=False).gguf_paths[0]
    monkeypatch.undo()
    assert _llama_ids(gguf_path, "Hello world") != _llama_ids_of_file(hub_tinyllama, "Hello world")
    report = verify_gguf(gguf_path, hub_tinyllama)
    assert report.tokenization.passed is False, report.tokenization.detail
    assert not report.passed


def _llama_ids_of_file(folder: Path, text: str) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids


def test_a_folder_saved_by_transformers_keeps_transformers_as_reference(hub_tinyllama: Path, tmp_path: Path) -> None:
    """What a run trained by ftwiz holds (transformers 5 saved its tokenizer.json): nothing changes, and its
    export (add_space_prefix false, a served leading space) passes against transformers' own ids."""
    import shutil

    import transformers
    from ftwiz.core.export.verify_reference import reference_tokenizer

    folder = tmp_path / "merged"
    folder.mkdir()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(hub_tinyllama / name, folder / name)
    transformers.AutoTokenizer.from_pretrained(hub_tinyllama).save_pretrained(folder)
    saved = transformers.AutoTokenizer.from_pretrained(folder)
    assert reference_tokenizer(folder, saved) == (saved, None)
    report = _export(folder, tmp_path / "out", verify=True).reports[0]
    assert report.passed, [(c.name, c.detail) for c in report.checks]
    assert "tokenizer_reference" not in [c.name for c in report.checks]
    assert "prepend_scheme=first" in report.tokenization.detail  # transformers' '▁' placement was the reference
    # a run's folder always keeps transformers (training tokenized with it), whatever its file says
    hub = transformers.AutoTokenizer.from_pretrained(hub_tinyllama)
    assert reference_tokenizer(hub_tinyllama, hub, training=object()) == (hub, None)


def test_the_file_reference_tokenizes_as_the_file_and_renders_chats(hub_tinyllama: Path) -> None:
    import transformers
    from ftwiz.core.export.verify_reference import reference_tokenizer

    auto = transformers.AutoTokenizer.from_pretrained(hub_tinyllama)
    reference, check = reference_tokenizer(hub_tinyllama, auto)
    assert check is not None and check.passed is None
    for text in TEXTS:
        assert reference(text)["input_ids"] == _llama_ids_of_file(hub_tinyllama, text), text
    chat = [{"role": "user", "content": "Hi"}]
    assert reference.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        auto.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert (reference.bos_token_id, reference.eos_token_id) == (auto.bos_token_id, auto.eos_token_id)


def test_the_pipeline_is_read_as_the_tokenizers_library_reads_it(tmp_path: Path) -> None:
    """The fast read (the text before "model") and the whole-file fallback agree with a full load."""
    import json

    from ftwiz.core.export.verify_reference import file_pipeline
    from real_tokenizers import require_shared
    from tokenizers import Tokenizer

    path = require_shared() / "TinyLlama-1.1B-Chat-v1.0" / "tokenizer.json"
    full = json.loads(Tokenizer.from_file(str(path)).to_str())
    expected = {key: full[key] for key in ("normalizer", "pre_tokenizer")}
    assert file_pipeline(path) == expected
    data = json.loads(path.read_text(encoding="utf-8"))
    model_first = tmp_path / "tokenizer.json"  # a hand-made layout: the vocabulary before the pipeline
    model_first.write_text(json.dumps({"model": data.pop("model"), **data}), encoding="utf-8")
    assert file_pipeline(model_first) == expected
