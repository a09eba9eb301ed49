"""``ftwiz export`` of a model whose byte-level BPE tokenizer is only vocab.json + merges.txt (no tokenizer.json).

The folder carries Qwen2-1.5B-Instruct-Boundless's tokenizer files exactly as that repo ships them (vocab.json,
merges.txt, added_tokens.json, tokenizer_config.json, ...) beside a tiny random Qwen2 body of the real vocabulary
size. Oracles: transformers' tokenization of the folder against llama.cpp's tokenization of the exported GGUF
(llama-cpp-python, vocab only) on llama.cpp's Qwen2 test texts (whose expected ids llama.cpp ships too) and on
chats rendered by ``apply_chat_template``; and the GGUF exported after the user's own workaround
(``AutoTokenizer.save_pretrained`` writing a tokenizer.json into a copy of the folder), whose tokenizer metadata
must be identical. Skipped with a reason when ../shared is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from real_tokenizers import require_shared

QWEN2 = "Qwen2-1.5B-Instruct-Boundless"
FILES = ["vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json", "special_tokens_map.json",
         "generation_config.json"]
CHATS = [
    [{"role": "user", "content": "Hi there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2? Answer  in   words."},
     {"role": "assistant", "content": "Four."}, {"role": "user", "content": "Äpfel 🦙 日本語\n\tcode()"}],
]


def _export_cli(folder: Path, out: Path, *extra: str):
    """``ftwiz export FOLDER --quant F16 --out OUT --json [EXTRA]``; the verify record when ``--verify``."""
    from ftwiz.core.cli import main
    from ftwiz.core.export.verify_record import read_verify_record

    assert main(["export", str(folder), "--quant", "F16", "--out", str(out), "--json", *extra]) == 0
    return read_verify_record(out) if "--verify" in extra else None


@pytest.fixture(scope="module")
def boundless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's tokenizer files as shipped, plus a 1-layer random Qwen2 body with its 151,936 rows."""
    import transformers
    from spm_models import save_random_body

    source = require_shared() / QWEN2
    folder = tmp_path_factory.mktemp("slow") / "boundless"
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    body = transformers.Qwen2Config(**{**config, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                                       "num_attention_heads": 4, "num_key_value_heads": 2, "max_window_layers": 1,
                                       "max_position_embeddings": 512})
    save_random_body(folder, body)
    for name in FILES:
        shutil.copyfile(source / name, folder / name)
    assert not (folder / "tokenizer.json").exists()
    return folder


@pytest.fixture(scope="module")
def exported(boundless: Path, tmp_path_factory: pytest.TempPathFactory, session_dirs: dict[str, Path]
             ) -> tuple[Path, object]:
    """``ftwiz export FOLDER --quant F16 --verify``: the GGUF and its verify record; the folder is left as it was."""
    before = sorted(p.name for p in boundless.iterdir())
    out = tmp_path_factory.mktemp("slow-out") / "boundless-F16.gguf"
    with pytest.MonkeyPatch.context() as env:  # module scope: the per-test ftwiz_env is not set up yet
        for name in ("cache", "data", "runs"):
            env.setenv(f"FTWIZ_{name.upper()}_DIR", str(session_dirs[name]))
        record = _export_cli(boundless, out, "--verify")
    assert sorted(p.name for p in boundless.iterdir()) == before, "the export wrote into the model folder"
    return out, record


def _tokenizer_fields(path: Path) -> dict[str, object]:
    """The GGUF's ``tokenizer.*`` keys as Python values (read_metadata: GGUFReader takes ~30 s on 151k tokens)."""
    from ftwiz.core.gguf_info import read_metadata

    meta = read_metadata(path)
    return {k: v.tolist() if hasattr(v, "tolist") else v for k, v in meta.items() if k.startswith("tokenizer.")}


def test_exported_gguf_tokenizes_like_transformers(boundless: Path, exported: tuple[Path, object]) -> None:
    """llama.cpp's Qwen2 test texts (transformers and llama.cpp's own expected ids) and chat prompts."""
    import llama_cpp
    from transformers import AutoTokenizer

    tests = require_shared() / "llamacpp-vocab-tests"
    texts = (tests / "ggml-vocab-qwen2.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    expected_ids = (tests / "ggml-vocab-qwen2.gguf.out").read_text(encoding="utf-8").split("\n")
    texts[-1] = texts[-1].removesuffix("\n")
    assert len(texts) > 30
    hf = AutoTokenizer.from_pretrained(boundless)
    chats = [hf.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) for chat in CHATS]
    assert all("<|im_start|>" in chat for chat in chats)
    llm = llama_cpp.Llama(model_path=str(exported[0]), vocab_only=True, verbose=False)
    try:
        mismatches = []
        for i, text in enumerate(texts + chats):
            want = hf(text, add_special_tokens=True).input_ids
            got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if got != want or (i < len(texts) and [int(t) for t in expected_ids[i].split()] != want):
                mismatches.append((text[:40], want[:12], got[:12]))
    finally:
        llm.close()
    assert not mismatches, f"{len(mismatches)}/{len(texts) + len(chats)} texts tokenize differently: {mismatches[:3]}"


def test_same_tokenizer_metadata_as_after_save_pretrained(boundless: Path, exported: tuple[Path, object],
                                                         tmp_path: Path) -> None:
    """Tokens, types, merges, pre-tokenizer, special ids and template equal the user's workaround's export."""
    from transformers import AutoTokenizer

    copy = tmp_path / "boundless"
    shutil.copytree(boundless, copy)
    AutoTokenizer.from_pretrained(copy).save_pretrained(copy)
    assert (copy / "tokenizer.json").is_file()
    _export_cli(copy, tmp_path / "workaround.gguf")
    ours, theirs = _tokenizer_fields(exported[0]), _tokenizer_fields(tmp_path / "workaround.gguf")
    assert ours.keys() == theirs.keys()
    assert len(ours["tokenizer.ggml.tokens"]) == 151936 and len(ours["tokenizer.ggml.merges"]) > 150_000
    assert ours["tokenizer.ggml.pre"] == "qwen2" and ours["tokenizer.ggml.eos_token_id"] == 151645
    for name in ours:
        assert ours[name] == theirs[name], name


def test_verify_and_check_pass(boundless: Path, exported: tuple[Path, object], capsys) -> None:
    """``--verify`` compares llama.cpp with transformers (tokenization included); ``--check`` says exportable."""
    from ftwiz.core.cli import main

    report = exported[1]
    assert report is not None and report.passed, report
    assert report.tokenization.passed, report.tokenization.detail
    capsys.readouterr()
    assert main(["export", str(boundless), "--check", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["ok"] and "vocab.json + merges.txt (pre-tokenizer qwen2" in check["tokenizer"]


def _slow_only(tiny_qwen2: Path, folder: Path, *, merges: bool = True) -> Path:
    """tiny_qwen2 with its tokenizer.json replaced by vocab.json (+ merges.txt), as older Qwen2 repos ship it."""
    shutil.copytree(tiny_qwen2, folder)
    tj = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    (folder / "vocab.json").write_text(json.dumps(tj["model"]["vocab"]), encoding="utf-8")
    if merges:
        lines = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "Qwen2Tokenizer"}),
                                                  encoding="utf-8")
    (folder / "tokenizer.json").unlink()
    return folder


def test_tiny_model_without_tokenizer_json_exports_like_transformers(tiny_qwen2: Path, tmp_path: Path) -> None:
    """Without ../shared: a tiny Qwen2 given as vocab.json + merges.txt exports, and llama.cpp tokenizes its
    texts and chat prompt as transformers does from the same folder."""
    import llama_cpp
    from transformers import AutoTokenizer

    folder = _slow_only(tiny_qwen2, tmp_path / "tiny-slow")
    _export_cli(folder, tmp_path / "tiny.gguf")
    assert not (folder / "tokenizer.json").exists()
    hf = AutoTokenizer.from_pretrained(folder)
    texts = ["Hello world! What's 1234 + 5678?", "  Indented\n\twith café, naïve, 東京 🦙",
             hf.apply_chat_template(CHATS[1], tokenize=False, add_generation_prompt=True)]
    llm = llama_cpp.Llama(model_path=str(tmp_path / "tiny.gguf"), vocab_only=True, verbose=False)
    try:
        got = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
    finally:
        llm.close()
    assert got == [hf(t).input_ids for t in texts]


def test_vocab_json_without_merges_names_the_missing_file(tiny_qwen2: Path, tmp_path: Path, capsys) -> None:
    from ftwiz.core.cli import main

    folder = _slow_only(tiny_qwen2, tmp_path / "no-merges", merges=False)
    assert main(["export", str(folder), "--quant", "F16", "--out", str(tmp_path / "x.gguf")]) == 2
    err = capsys.readouterr().err
    assert "merges.txt" in err and "no supported tokenizer" not in err
    assert not (tmp_path / "x.gguf").exists()
    (folder / "vocab.json").unlink()
    assert main(["export", str(folder), "--quant", "F16", "--out", str(tmp_path / "x.gguf")]) == 2
    assert "vocab.json + merges.txt" in capsys.readouterr().err


def test_broken_tokenizer_config_beside_vocab_json_is_named(tiny_qwen2: Path, tmp_path: Path, capsys) -> None:
    """A tokenizer_config.json an editor broke, beside vocab.json + merges.txt: the error names that file and
    its line; it blamed vocab.json and told the user to restore vocab.json and merges.txt."""
    from ftwiz.core.cli import main

    folder = _slow_only(tiny_qwen2, tmp_path / "broken-config")
    (folder / "tokenizer_config.json").write_text('{\n  "model_max_length": 512,\n  "eos_token": "<|im_end|>\n}',
                                                  encoding="utf-8")
    assert main(["export", str(folder), "--quant", "F16", "--out", str(tmp_path / "x.gguf")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{folder / 'tokenizer_config.json'}, line 3: not valid JSON" in err, err
    assert "vocab.json" not in err
    assert not (tmp_path / "x.gguf").exists()
