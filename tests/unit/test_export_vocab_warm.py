"""The vocabulary cache filled after training or a download: the first export then reads it, and writes the
same GGUF as an export that parsed tokenizer.json itself (the oracle: the file exported with no cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def _export(model: Path, out: Path) -> bytes:
    from ftwiz.core.export.convert import convert_to_gguf

    return convert_to_gguf(model, out, "F16").read_bytes()


def test_a_warmed_cache_is_what_the_first_export_reads(tiny_qwen2: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwiz.core.export import vocab_cache
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "no-cache"))
    monkeypatch.setattr(vocab_cache, "cache_key", lambda *a: None)  # the oracle: parsed, never cached
    expected = _export(tiny_qwen2, tmp_path / "parsed.gguf")
    monkeypatch.undo()

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    n_vocab = model_params(tiny_qwen2).vocab_size
    assert vocab_cache.lookup(vocab_cache.cache_key(tiny_qwen2, n_vocab)) is None
    assert warm_vocab_cache(tiny_qwen2)
    assert vocab_cache.lookup(vocab_cache.cache_key(tiny_qwen2, n_vocab)) is not None

    parsed: list[Path] = []
    real_build = vocab_cache.build
    monkeypatch.setattr(vocab_cache, "build", lambda *a, **k: parsed.append(a[1]) or real_build(*a, **k))
    assert _export(tiny_qwen2, tmp_path / "warm.gguf") == expected
    assert parsed == []  # the export did not parse tokenizer.json again


def test_an_adapter_folder_is_warmed_at_its_base_models_rows(tiny_qwen2: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A LoRA run saves the tokenizer beside the adapter (no config.json); the merge copies it byte for byte,
    so the merged model's export hits the entry made from the adapter folder and the base's config."""
    from ftwiz.core.export import vocab_cache
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    adapter.mkdir()
    shutil.copytree(tiny_qwen2, merged)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(tiny_qwen2 / name, adapter / name)
    assert not warm_vocab_cache(adapter)  # no config.json: the rows are unknown
    assert warm_vocab_cache(adapter, tiny_qwen2)
    rows = model_params(merged).vocab_size
    assert vocab_cache.lookup(vocab_cache.cache_key(merged, rows)) is not None


def test_what_cannot_be_warmed_is_skipped_quietly(tiny_qwen2: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Training and downloads never fail because of the cache; the export reports such folders itself."""
    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_qwen2, broken)
    (broken / "config.json").write_text(json.dumps({"architectures": ["NoSuchForCausalLM"]}))
    assert warm_vocab_cache(broken) is False
    (broken / "tokenizer.json").write_text("{not json")
    shutil.copy2(tiny_qwen2 / "config.json", broken / "config.json")
    assert warm_vocab_cache(broken) is False
    assert warm_vocab_cache(tmp_path / "missing") is False


def test_a_folder_that_cannot_be_looked_into_is_skipped_quietly(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Path.is_file raises, rather than answering False, for a folder without search permission or a name
    longer than the file system allows: a completed training or download ended in that traceback."""
    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    too_long = tmp_path / ("x" * 300)
    assert warm_vocab_cache(too_long) is False
    assert warm_vocab_cache(tmp_path, too_long) is False


def test_the_first_export_after_warming_skips_the_template_check(tiny_qwen2: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Training and downloads also check the chat template the GGUF will carry, so the export that follows
    does not import jinja2 for it (~0.1 s of a one-second export)."""
    from ftwiz.core.export import template_syntax
    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    parses: list[int] = []
    real_parser = template_syntax._parser
    monkeypatch.setattr(template_syntax, "_parser", lambda: parses.append(1) or real_parser())
    assert warm_vocab_cache(tiny_qwen2)
    assert parses == [1]  # checked once, while warming
    _export(tiny_qwen2, tmp_path / "first.gguf")
    assert parses == [1]  # the first export found it checked


def test_a_broken_template_is_still_reported_by_the_export(tiny_qwen2: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Warming does not hide a template that does not parse: training still ends well, and the export names
    the file and the line, as it would without the warm-up."""
    from ftwiz.core.errors import FtwizError
    from ftwiz.core.export.vocab_warm import warm_vocab_cache

    monkeypatch.setenv("FTWIZ_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    shutil.copytree(tiny_qwen2, model)
    (model / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }\n{% endfor %}")
    assert warm_vocab_cache(model)  # the vocabulary is cached all the same
    with pytest.raises(FtwizError) as err:
        _export(model, tmp_path / "out.gguf")
    assert "chat_template.jinja" in str(err.value.where.file) and err.value.where.line == 1
    assert not (tmp_path / "out.gguf").exists()
