"""Export preflight recognises a Qwen2/GPT-2-style base given only as vocab.json + merges.txt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.export.preflight import check_exportable
from ftwiz.core.export.vocab import detect_pre_tokenizer, tokenizer_kind


@pytest.fixture()
def vocab_merges_base(tiny_qwen2: Path, tmp_path: Path) -> Path:
    """tiny_qwen2 with its tokenizer.json replaced by the slow-tokenizer files Qwen2 repos also ship."""
    base = tmp_path / "base"
    shutil.copytree(tiny_qwen2, base)
    tj = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    (base / "vocab.json").write_text(json.dumps(tj["model"]["vocab"]), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    (base / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    (base / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (base / "tokenizer.json").unlink()
    return base


def test_vocab_json_and_merges_txt_pass_preflight(vocab_merges_base: Path, tiny_qwen2: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    check = check_exportable(vocab_merges_base, out_dir=tmp_path)
    assert check.ok and check.problems == [], check.problems
    original = detect_pre_tokenizer(json.loads((tiny_qwen2 / "tokenizer.json").read_text(encoding="utf-8")))
    assert "vocab.json + merges.txt" in check.tokenizer and f"pre-tokenizer {original}" in check.tokenizer
    # what training does with it: save_pretrained writes the tokenizer.json the export reads, same ids
    saved = tmp_path / "saved"
    tokenizer = AutoTokenizer.from_pretrained(vocab_merges_base)
    tokenizer.save_pretrained(saved)
    assert tokenizer_kind(saved) == "bpe"
    text = "Hello world 123, café"
    assert tokenizer(text).input_ids == AutoTokenizer.from_pretrained(tiny_qwen2)(text).input_ids


def test_a_folder_with_no_tokenizer_still_reports_it(vocab_merges_base: Path, tmp_path: Path) -> None:
    (vocab_merges_base / "merges.txt").unlink()
    (vocab_merges_base / "vocab.json").unlink()
    check = check_exportable(vocab_merges_base, out_dir=tmp_path)
    assert not check.ok and any("no supported tokenizer" in p for p in check.problems)
