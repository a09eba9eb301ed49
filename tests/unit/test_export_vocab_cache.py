"""The cached vocabulary writes the same GGUF metadata as parsing tokenizer.json again, for real tokenizers.

Oracle: gguf-py's ``GGUFWriter`` fed by ``write_vocab`` parsing the folder itself (no cache); the exports
through the cache, first a miss (it is filled) then a hit, must write byte-identical files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers"
QWEN2 = "Qwen2-1.5B-Instruct-Boundless"
# folder -> the model's embedding rows; Qwen3 is the Qwen2 vocabulary with Qwen3's tokenizer_config.json.
# Phi-3 (SentencePiece BPE in tokenizer.json) and TinyLlama (tokenizer.model) are not cached: same bytes too.
TOKENIZERS = {QWEN2: 151936, "Qwen3-0.6B": 151936, "Phi-3-mini-4k-instruct": 32064, "TinyLlama-1.1B-Chat-v1.0": 32000}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """Each shared tokenizer as models ship it: tokenizer.json written by transformers (once per module)."""
    if not SHARED.is_dir():
        pytest.skip(f"the real tokenizers are not in {SHARED} (a plain clone has no ../shared)")
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("tokenizers")
    out: dict[str, Path] = {}
    for name in TOKENIZERS:
        source = SHARED / name
        if name == "Qwen3-0.6B":
            source = root / "qwen3-source"
            shutil.copytree(SHARED / QWEN2, source)
            shutil.copy(SHARED / name / "tokenizer_config.json", source / "tokenizer_config.json")
        out[name] = root / name
        AutoTokenizer.from_pretrained(source).save_pretrained(out[name])
        for extra in ("generation_config.json", "tokenizer.model"):
            if (source / extra).is_file():
                shutil.copy(source / extra, out[name] / extra)
    return out


def _metadata(cls, path: Path, model: Path, n_vocab: int, from_cache: bool) -> bytes:
    from ftwiz.core.export.vocab import write_vocab
    from ftwiz.core.export.vocab_cache import read_vocab

    writer = cls(path, "qwen2")
    if from_cache:
        tj, merges, vocab = read_vocab(model, n_vocab)
        write_vocab(writer, model, n_vocab, tokenizer_json=tj, packed_merges=merges, vocab=vocab)
    else:
        write_vocab(writer, model, n_vocab)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path.read_bytes()


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_cached_vocabulary_is_byte_identical(saved: dict[str, Path], tmp_path: Path, monkeypatch, name: str) -> None:
    import gguf
    from ftwiz.core.export.gguf_kv import BulkGGUFWriter
    from ftwiz.core.export.vocab_cache import cache_key, lookup

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    model, n_vocab = saved[name], TOKENIZERS[name]
    expected = _metadata(gguf.GGUFWriter, tmp_path / "reference.gguf", model, n_vocab, from_cache=False)
    assert lookup(cache_key(model, n_vocab)) is None
    cold = _metadata(BulkGGUFWriter, tmp_path / "cold.gguf", model, n_vocab, from_cache=True)
    byte_level = name.startswith("Qwen")
    assert (lookup(cache_key(model, n_vocab)) is not None) == byte_level  # a BPE's miss filled the cache
    warm = _metadata(BulkGGUFWriter, tmp_path / "warm.gguf", model, n_vocab, from_cache=True)
    assert cold == expected
    assert warm == expected
    if byte_level:  # the cold route read the vocab and merges from the bytes (vocab_raw.py), not through json
        from ftwiz.core.export.tokenizer_split import read_tokenizer_json_split
        from ftwiz.core.export.vocab import END_OF_TURN
        from ftwiz.core.export.vocab_raw import assemble

        split = read_tokenizer_json_split(model)
        assert split.merges is not None and split.vocab is not None
        assert assemble(split.vocab, split.parsed["added_tokens"], n_vocab, END_OF_TURN) is not None
    assert len(expected) > (3_000_000 if byte_level else 300_000)  # tokens (and merges) really were written


def test_changed_tokenizer_or_rows_miss_and_broken_file_is_reparsed(saved: dict[str, Path], tmp_path: Path,
                                                                   monkeypatch) -> None:
    """A fine-tune that adds a token, another embedding size or a truncated cache file never reuses the
    stored arrays: the export parses tokenizer.json again and writes what gguf-py writes; so it does when the
    cache folder cannot be written."""
    import json

    import gguf
    from ftwiz.core.export.gguf_kv import BulkGGUFWriter
    from ftwiz.core.export.vocab_cache import _folder, cache_key, lookup

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "qwen"
    shutil.copytree(saved[QWEN2], model)
    _metadata(BulkGGUFWriter, tmp_path / "first.gguf", model, 151936, from_cache=True)
    assert cache_key(model, 151936) != cache_key(model, 152064)
    tj = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    tj["added_tokens"].append({"id": 151665, "content": "<tool_x>", "single_word": False, "lstrip": False,
                               "rstrip": False, "normalized": False, "special": True})
    old_key = cache_key(model, 151936)
    (model / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    assert cache_key(model, 151936) != old_key
    ours = _metadata(BulkGGUFWriter, tmp_path / "ours.gguf", model, 151936, from_cache=True)
    reference = _metadata(gguf.GGUFWriter, tmp_path / "ref.gguf", model, 151936, from_cache=False)
    assert ours == reference
    assert b"<tool_x>" in ours
    cached = _folder() / f"{cache_key(model, 151936)}.bin"
    cached.write_bytes(cached.read_bytes()[:-10])  # truncated (a full disk, a killed copy)
    assert lookup(cache_key(model, 151936)) is None
    assert _metadata(BulkGGUFWriter, tmp_path / "again.gguf", model, 151936, from_cache=True) == reference
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(blocked))  # a cache that cannot be written: exported all the same
    assert _metadata(BulkGGUFWriter, tmp_path / "uncached.gguf", model, 151936, from_cache=True) == reference
