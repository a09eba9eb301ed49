"""BPE merges packed straight from tokenizer.json's bytes are the merges gguf-py writes.

Oracle: ``gguf.SpecialVocab(load_merges=True)`` reading the same folder, written by ``gguf.GGUFWriter``; the two
GGUF files are compared byte for byte. Layouts the fast path does not handle must still give the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED_QWEN = Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers" / "Qwen2-1.5B-Instruct-Boundless"

PAIRS = [["Ġ", "t"], ["a", "\""], ["\\", "n"], ["é", "日本"], ["🦙", "x"], ["\n", "\t"], ["q", "\\\""], ["u", "é"]]


def _tokenizer_json(merges: list, *, merges_last: bool = True, indent: int | None = 2) -> dict:
    pieces = sorted({p for m in merges for p in (m if isinstance(m, list) else m.split(" "))})
    pieces += ["".join(m) if isinstance(m, list) else m.replace(" ", "") for m in merges]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    model = {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False, "vocab": vocab,
             "merges": merges}
    if not merges_last:
        model = {"merges": merges, **{k: v for k, v in model.items() if k != "merges"}}
    return {"version": "1.0", "added_tokens": [], "pre_tokenizer": {"type": "ByteLevel"},
            "decoder": {"type": "ByteLevel"}, "model": model}


def _merges_file(tmp_path: Path, name: str, fill) -> bytes:
    """A GGUF holding only the merges array as ``fill(writer)`` adds it."""
    import gguf
    from ftwiz.core.export.gguf_kv import BulkGGUFWriter

    path = tmp_path / f"{name}.gguf"
    writer = (BulkGGUFWriter if name == "ours" else gguf.GGUFWriter)(path, "qwen2")
    fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path.read_bytes()


def _ours_vs_gguf_py(folder: Path, tmp_path: Path) -> bool:
    """Whether the fast path packed the merges; asserts both files are identical."""
    import gguf
    from ftwiz.core.export.tokenizer_split import read_tokenizer_json_split
    from ftwiz.core.export.vocab_json import bpe_merges

    split = read_tokenizer_json_split(folder)
    tj, packed = split.parsed, split.merges
    reference = gguf.SpecialVocab(folder, load_merges=True).merges
    theirs = _merges_file(tmp_path, "theirs", lambda w: w.add_token_merges(reference))
    ours = _merges_file(tmp_path, "ours", lambda w: w.add_token_merges(packed if packed is not None else bpe_merges(tj)))
    assert ours == theirs
    whole = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    if packed is not None:  # the rest of the file parsed as json parses it; merges left out
        whole["model"]["merges"] = []
    if split.vocab is not None:  # and the vocab, read from the bytes too (test_export_vocab_raw.py)
        whole["model"]["vocab"] = {}
    assert tj == whole
    return packed is not None


@pytest.mark.parametrize("indent", [2, None])
def test_pairs_with_escapes_and_non_ascii_are_packed_as_gguf_py_writes_them(tmp_path: Path, indent) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(_tokenizer_json(PAIRS), indent=indent, ensure_ascii=False),
                                          encoding="utf-8")
    assert _ours_vs_gguf_py(folder, tmp_path)
    # \u escapes (transformers writes raw UTF-8, other tools may not) decode the same way
    (folder / "tokenizer.json").write_text(json.dumps(_tokenizer_json(PAIRS), indent=indent, ensure_ascii=True),
                                          encoding="utf-8")
    assert _ours_vs_gguf_py(folder, tmp_path)


def test_string_merges_and_unusual_layouts_give_the_same_file(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    cases = {
        "older 'left right' strings": (_tokenizer_json([" ".join(m) for m in PAIRS if " " not in "".join(m)]), True),
        "merges before vocab": (_tokenizer_json(PAIRS, merges_last=False), False),
        "a piece holding a space (U+0120 rule)": (_tokenizer_json([*PAIRS, ["a b", "c"]]), False),
    }
    for name, (content, fast) in cases.items():
        (folder / "tokenizer.json").write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
        assert _ours_vs_gguf_py(folder, tmp_path) is fast, name


def test_real_qwen2_merges_are_identical(tmp_path: Path) -> None:
    if not SHARED_QWEN.is_dir():
        pytest.skip(f"the real Qwen2 tokenizer is not in {SHARED_QWEN} (a plain clone has no ../shared)")
    from transformers import AutoTokenizer

    folder = tmp_path / "qwen"
    AutoTokenizer.from_pretrained(SHARED_QWEN).save_pretrained(folder)  # tokenizer.json, as models ship
    assert _ours_vs_gguf_py(folder, tmp_path)
