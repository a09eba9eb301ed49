"""SentencePiece-family models exported from tokenizer.json alone (transformers 5 saves no tokenizer.model).

Oracles: transformers' tokenization of the folder against llama.cpp's tokenization of the exported GGUF
(llama-cpp-python, vocab only) on llama.cpp's own tokenizer test texts plus chat-shaped ones; and, where the
SentencePiece model exists too, the GGUF's vocabulary arrays exported from tokenizer.model. Real tokenizers
come from ../shared/tokenizers (skipped with a reason when absent); model bodies are tiny random ones with
the real vocabulary size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED_TOKENIZERS = Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers"
CHAT_TURNS = ["Hi there", "What is 2+2? Answer  in   words.", "Äpfel 🦙 日本語\n\tcode()"]


@pytest.fixture(scope="module")
def tokenizers_dir() -> Path:
    if not SHARED_TOKENIZERS.is_dir():
        pytest.skip(f"the real tokenizers are not in {SHARED_TOKENIZERS} (a plain clone has no ../shared)")
    return SHARED_TOKENIZERS


def _vocab_test_texts(tokenizers_dir: Path) -> list[str]:
    """llama.cpp's tokenizer test texts (``*.inp``: texts separated by ``__ggml_vocab_test__`` lines)."""
    texts: list[str] = []
    for inp in sorted((tokenizers_dir / "llamacpp-vocab-tests").glob("*.inp")):
        texts += inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    assert len(texts) > 60
    return texts + ["", " ", "Hello world", "  leading and   inner   spaces ", "tabs\tand\nnewlines\n\n",
                    "emoji 🦙 and bytes \u0000\u0001 ünïcödé 日本語", "x" * 300]


def _body(folder: Path, arch: str, vocab_size: int) -> Path:
    """A 1-layer random model of the real vocabulary size beside the tokenizer files."""
    import transformers
    from spm_models import phi3_config, save_random_body

    dims = {"vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
            "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False}
    config = phi3_config(vocab_size, num_hidden_layers=1) if arch == "phi3" else transformers.LlamaConfig(**dims)
    return save_random_body(folder, config)


def _export(folder: Path, tmp: Path) -> Path:
    from ftwiz.core.export.pipeline import export_model

    result = export_model(folder, ["F16"], out=tmp / f"{folder.name}.gguf")
    return Path(result.gguf_paths[0])


def _json_only(folder: Path) -> Path:
    assert (folder / "tokenizer.json").is_file() and not (folder / "tokenizer.model").exists()
    return folder


def _copy(src: Path, dst: Path, names: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(src / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def tinyllama_json(tokenizers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _copy(tokenizers_dir / "TinyLlama-1.1B-Chat-v1.0", tmp_path_factory.mktemp("tl") / "tinyllama-json",
                   ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
    return _body(folder, "llama", 32000)


@pytest.fixture(scope="module")
def tinyllama_resaved(tinyllama_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TinyLlama fine-tuned and saved with transformers 5: its tokenizer.json holds the rebuilt pipeline
    ('▁' only at the start of a text, Metaspace prepend_scheme=first), and still no tokenizer.model."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tl5") / "tinyllama-resaved"
    shutil.copytree(tinyllama_json, folder)
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    (folder / "tokenizer.model").unlink(missing_ok=True)
    return folder


@pytest.fixture(scope="module")
def phi3_json(tokenizers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _copy(tokenizers_dir / "Phi-3-mini-4k-instruct", tmp_path_factory.mktemp("phi3") / "phi3-json",
                   ["tokenizer.json", "tokenizer_config.json"])
    return _body(folder, "phi3", 32064)  # Phi-3's embedding has 53 padding rows past the tokenizer


@pytest.fixture(scope="module")
def mistral_json(tokenizers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mistral v0.3 as transformers 5 saves it: tokenizer.json (re-derived from the .model) and no .model.

    ``LlamaTokenizerFast(vocab_file=...)`` yields a 3-token vocabulary in transformers 5.x, so the folder
    is loaded the way transformers 5 loads a checkpoint that has only tokenizer.model.
    """
    import transformers

    work = tmp_path_factory.mktemp("mistral")
    source = _copy(tokenizers_dir / "Mistral-7B-Instruct-v0.3", work / "source", ["tokenizer.model"])
    tok = transformers.LlamaTokenizer.from_pretrained(source, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                                      add_bos_token=True)
    folder = work / "mistral-json"
    tok.save_pretrained(folder)
    (folder / "tokenizer.model").unlink(missing_ok=True)
    return _body(folder, "llama", 32768)


def _chat_prompts(tok, template_file: Path | None = None) -> list[str]:
    """The model's own template rendered for 1-3 turns, with and without a system prompt."""
    if template_file is not None:
        tok.chat_template = template_file.read_text(encoding="utf-8")
    prompts = []
    for system in (None, "Be brief."):
        for turns in (1, 2, 3):
            messages = [{"role": "system", "content": system}] if system else []
            for k in range(turns):
                messages += [{"role": "user", "content": CHAT_TURNS[k]}, {"role": "assistant", "content": f"ok {k}"}]
            try:
                prompts.append(tok.apply_chat_template(messages, tokenize=False))
            except Exception:  # noqa: BLE001 - a template that refuses a system prompt: fewer prompts
                continue
    assert len(prompts) >= 3
    return prompts


def _assert_same_tokens(folder: Path, gguf_path: Path, texts: list[str], *, after: str | None = None,
                        template_file: Path | None = None, chat_from: int = 0, file_pipeline: bool = False,
                        chat_lead: str = "") -> None:
    """transformers and llama.cpp give the same ids for every text; with ``after``, each text follows that
    special token (where chat text sits); chat prompts of the model's template are compared as they are
    (from token ``chat_from`` on; llama.cpp given ``chat_lead`` in front, the GGUF template's served space).
    ``file_pipeline``: transformers applying tokenizer.json as written
    (PreTrainedTokenizerFast; what transformers 4 and every non-Llama tokenizer class do)."""
    import llama_cpp
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    hf = (PreTrainedTokenizerFast if file_pipeline else AutoTokenizer).from_pretrained(folder)
    cases = [(f"{after}{t}", False) for t in texts] if after else [(t, True) for t in texts]
    chats = _chat_prompts(hf, template_file)
    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        mismatches = []
        for text, special in cases:
            expected = hf(text, add_special_tokens=special).input_ids
            got = llm.tokenize(text.encode("utf-8"), add_bos=special, special=True)
            if got != expected:
                mismatches.append((text[:40], expected[:12], got[:12]))
        for prompt in chats:
            expected = hf(prompt, add_special_tokens=False).input_ids
            got = llm.tokenize((chat_lead + prompt).encode("utf-8"), add_bos=False, special=True)
            if got[chat_from:] != expected[chat_from:] or len(got) != len(expected):
                mismatches.append((prompt[:40], expected[:12], got[:12]))
    finally:
        llm.close()
    assert not mismatches, f"{len(mismatches)}/{len(cases) + len(chats)} texts tokenize differently: {mismatches[:3]}"


def test_tinyllama_from_tokenizer_json_alone_tokenizes_like_transformers(tinyllama_json: Path, tokenizers_dir: Path,
                                                                         tmp_path: Path) -> None:
    """TinyLlama's published tokenizer.json ('▁' before every text segment, as SentencePiece): every text
    matches, plain ones at the start of a prompt, after special tokens, and chat prompts."""
    gguf_path = _export(_json_only(tinyllama_json), tmp_path)
    texts = _vocab_test_texts(tokenizers_dir)
    _assert_same_tokens(tinyllama_json, gguf_path, texts + [f"{t}</s>{t}" for t in texts[:30]], file_pipeline=True)


def test_tinyllama_saved_by_transformers5_tokenizes_like_transformers(tinyllama_resaved: Path, tokenizers_dir: Path,
                                                                      tmp_path: Path, caplog) -> None:
    """'▁' only at the very start (prepend_scheme=first) is not expressible in llama.cpp: the GGUF adds none,
    so text after a special token (every later chat turn) matches; its zephyr template opens with plain text,
    so the GGUF's template serves a leading space that llama.cpp tokenizes as training's first '▁<', and every
    chat prompt matches from its first token (core/export/space_prefix.py); the export says so."""
    from ftwiz.core.export.space_prefix import split_served
    from ftwiz.core.gguf_info import read_gguf_info

    gguf_path = _export(_json_only(tinyllama_resaved), tmp_path)
    assert "prepend_scheme=first" in caplog.text
    lead, _ = split_served(read_gguf_info(gguf_path).chat_template)
    assert lead == " "
    _assert_same_tokens(tinyllama_resaved, gguf_path, _vocab_test_texts(tokenizers_dir), after="</s>", chat_lead=lead)


def test_phi3_from_tokenizer_json_tokenizes_like_transformers(phi3_json: Path, tokenizers_dir: Path,
                                                              tmp_path: Path) -> None:
    """transformers 5 applies Phi-3's tokenizer.json as written; its specials strip the whitespace after them
    (llama.cpp does the same for models named Phi-3: the folder name becomes general.name)."""
    gguf_path = _export(_json_only(phi3_json), tmp_path)
    texts = _vocab_test_texts(tokenizers_dir)
    _assert_same_tokens(phi3_json, gguf_path, texts + [f"<|user|>{t}<|end|>" for t in texts])


def test_mistral_v03_saved_by_transformers5_tokenizes_like_transformers(mistral_json: Path, tokenizers_dir: Path,
                                                                        tmp_path: Path, caplog) -> None:
    gguf_path = _export(_json_only(mistral_json), tmp_path)
    assert "prepend_scheme=first" in caplog.text  # the export says what llama.cpp cannot reproduce
    _assert_same_tokens(mistral_json, gguf_path, _vocab_test_texts(tokenizers_dir), after="[INST]",
                        template_file=tokenizers_dir / "Mistral-7B-Instruct-v0.3" / "chat_template.jinja")


def _arrays(folder: Path, n_vocab: int) -> dict[str, object]:
    """The tokenizer keys ftwiz's converter writes for ``folder`` (the values the GGUF writer packs)."""
    import gguf
    from ftwiz.core.export.vocab import write_vocab

    writer = gguf.GGUFWriter(None, "llama")
    write_vocab(writer, folder, n_vocab)
    kv = writer.kv_data[0]
    keys = ("tokens", "token_type", "scores", "model", "add_bos_token", "bos_token_id", "eos_token_id",
            "add_space_prefix")
    return {key: kv[f"tokenizer.ggml.{key}"].value for key in keys}


def _with_model_only(src: Path, folder: Path, model_file: Path) -> Path:
    """The same model with tokenizer.model instead of tokenizer.json (what llama.cpp's converter prefers)."""
    shutil.copytree(src, folder)
    (folder / "tokenizer.json").unlink()
    shutil.copy(model_file, folder / "tokenizer.model")
    return folder


def test_tinyllama_arrays_equal_those_from_tokenizer_model(tinyllama_json: Path, tinyllama_resaved: Path,
                                                           tokenizers_dir: Path, tmp_path: Path) -> None:
    from_model = _with_model_only(tinyllama_json, tmp_path / "tinyllama-model",
                                  tokenizers_dir / "TinyLlama-1.1B-Chat-v1.0" / "tokenizer.model")
    ours, theirs = _arrays(tinyllama_json, 32000), _arrays(from_model, 32000)
    assert ours == theirs
    resaved = _arrays(tinyllama_resaved, 32000)  # transformers 5 keeps the merges' order
    assert {k: resaved[k] for k in ("tokens", "token_type", "scores")} == {
        k: theirs[k] for k in ("tokens", "token_type", "scores")}
    assert ours["model"] == "llama" and ours["add_bos_token"] is True and ours["scores"][259] == -1e9  # '▁▁'


def test_mistral_arrays_equal_those_from_tokenizer_model(mistral_json: Path, tokenizers_dir: Path,
                                                         tmp_path: Path) -> None:
    """transformers 5 re-derives the merges in vocabulary order, so runs of '▁' (which the .model scores
    -1e9, last) are joined early by transformers; the GGUF follows the tokenizer.json. Everything else is equal."""
    from_model = _with_model_only(mistral_json, tmp_path / "mistral-model",
                                  tokenizers_dir / "Mistral-7B-Instruct-v0.3" / "tokenizer.model")
    ours, theirs = _arrays(mistral_json, 32768), _arrays(from_model, 32768)
    assert ours["tokens"] == theirs["tokens"] and ours["token_type"] == theirs["token_type"]
    differ = [ours["tokens"][i] for i, (a, b) in enumerate(zip(ours["scores"], theirs["scores"], strict=True)) if a != b]
    assert differ and all(set(token) == {"\u2581"} for token in differ), differ[:5]
    assert {k: ours[k] for k in ("model", "add_bos_token", "bos_token_id", "eos_token_id")} == {
        k: theirs[k] for k in ("model", "add_bos_token", "bos_token_id", "eos_token_id")}

