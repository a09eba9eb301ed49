"""A Modelfile written for a real tokenizer's GGUF: llama.cpp tokenizes what Ollama sends with exactly one BOS,
every end-of-turn token is a stop, and thinking follows the recipe.

The GGUFs are vocabulary-only files written by ftwiz's own exporter (core/export/vocab.py) from the real
tokenizers in ../shared/tokenizers (skipped with a reason when absent); llama.cpp (llama-cpp-python,
vocab_only) tokenizes both the training rendering and Ollama's rendering of the same conversations.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.deploy.modelfile import modelfile_spec
from ftwiz.core.deploy.probes import is_thinking_capable
from ftwiz.core.deploy.templates import ollama_prompt
from ftwiz.core.deploy.token_check import compare_tokens, gguf_tokenizer
from ftwiz.core.errors import FtwizError
from real_tokenizers import real_tokenizer, require_shared
from vocab_gguf import vocab_gguf


@pytest.fixture(scope="module")
def tokenizers_dir() -> Path:
    return require_shared()


def _vocab_gguf(model_dir: Path, out: Path, n_vocab: int) -> Path:
    return vocab_gguf(model_dir, out, n_vocab)


@pytest.fixture(scope="module")
def mistral_ggufs(tokenizers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """Mistral-7B-Instruct-v0.3's tokenizer and chat template, exported with add_bos_token true and false."""
    src = tokenizers_dir / "Mistral-7B-Instruct-v0.3"
    out: dict[bool, Path] = {}
    for add_bos in (True, False):
        folder = tmp_path_factory.mktemp("mistral-v03")
        shutil.copy(src / "tokenizer.model", folder / "tokenizer.model")
        (folder / "tokenizer_config.json").write_text(json.dumps({
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": add_bos,
            "chat_template": (src / "chat_template.jinja").read_text(encoding="utf-8")}), encoding="utf-8")
        (folder / "config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}), encoding="utf-8")
        out[add_bos] = _vocab_gguf(folder, folder / "vocab.gguf", 32768)
    return out


@pytest.mark.parametrize("add_bos", [True, False], ids=["gguf-adds-bos", "template-writes-bos"])
def test_mistral_v03_modelfile_one_bos_system_before_last_user(mistral_ggufs: dict[bool, Path], add_bos: bool) -> None:
    from ftwiz.core.gguf_info import read_gguf_info

    mistral_gguf = mistral_ggufs[add_bos]
    assert read_gguf_info(mistral_gguf).add_bos is add_bos
    spec = modelfile_spec(mistral_gguf, system="Be brief.")
    # BOS from exactly one place: the runtime's token when the GGUF asks for it, else the TEMPLATE's text
    assert spec.template.template.startswith("<s>") is (not add_bos)
    tokenize, bos = gguf_tokenizer(mistral_gguf)
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"}]
    served = ollama_prompt(spec.template.template, chat, system=spec.system)
    ids = tokenize(served, True)  # what Ollama's runner feeds llama.cpp: runtime specials + the prompt
    assert ids[0] == bos and ids[1] != bos
    assert served.endswith("[INST]Be brief.\n\nBye[/INST]")  # where v0.3's template puts the system text
    assert "</s>" in spec.stops and 'SYSTEM """Be brief."""' in spec.render()


def test_a_template_that_writes_bos_on_top_of_the_runtime_is_caught(mistral_ggufs: dict[bool, Path]) -> None:
    tokenize, bos = gguf_tokenizer(mistral_ggufs[True])
    chat = [{"role": "user", "content": "Hi"}]
    with pytest.raises(FtwizError, match="2 BOS tokens"):
        compare_tokens(tokenize, bos, [(chat, "<s>[INST]Hi[/INST]", "<s>[INST]Hi[/INST]")])


@pytest.fixture(scope="module")
def qwen3_gguf(tokenizers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen3's template on the Qwen2 vocabulary (identical files), as a byte-level BPE GGUF."""
    folder = tmp_path_factory.mktemp("qwen3")
    tok = real_tokenizer("Qwen3-0.6B")
    tok.save_pretrained(folder)
    # a base whose generation config ends on <|endoftext|> only, fine-tuned on the ChatML template
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": tok.convert_tokens_to_ids(
        "<|endoftext|>")}), encoding="utf-8")
    return _vocab_gguf(folder, folder / "vocab.gguf", len(tok))


@pytest.mark.parametrize("enable_thinking", [None, False])
def test_qwen3_modelfile_stops_on_im_end_and_follows_the_recipe_thinking(qwen3_gguf: Path,
                                                                        enable_thinking: bool | None) -> None:
    spec = modelfile_spec(qwen3_gguf, enable_thinking=enable_thinking)
    assert "<|im_end|>" in spec.stops and "<|endoftext|>" in spec.stops
    text = spec.render()
    assert 'PARAMETER stop "<|im_end|>"' in text
    capable = is_thinking_capable(spec.template.template)
    assert capable is (enable_thinking is None)  # Qwen3's default is thinking on
    prompt = ollama_prompt(spec.template.template, [{"role": "user", "content": "Hi"}])
    assert prompt.endswith("<think>\n\n</think>\n\n") is (enable_thinking is False)


def test_qwen3_gguf_ends_generation_on_every_stop_in_llama_cpp(qwen3_gguf: Path) -> None:
    """`ftwiz chat` and `ftwiz serve` run llama.cpp: its end-of-generation set and the chat handler's stop ids
    must cover <|im_end|> although the base's generation config only named <|endoftext|>."""
    import llama_cpp
    from ftwiz.core.deploy.chat import chat_formatter
    from ftwiz.core.deploy.server import server_command
    from ftwiz.core.gguf_info import read_gguf_info

    info = read_gguf_info(qwen3_gguf)
    _formatter, stops = chat_formatter(info)
    assert "<|im_end|>" in stops and "<|endoftext|>" in stops
    llm = llama_cpp.Llama(model_path=str(qwen3_gguf), vocab_only=True, verbose=False)
    im_end = info.tokens.index("<|im_end|>")
    assert llama_cpp.llama_vocab_is_eog(llm._model.vocab, im_end)
    cmd = server_command(qwen3_gguf, host="127.0.0.1", port=1, api_key=None, n_ctx=512, model_alias="m",
                         enable_thinking=False)
    assert json.loads(cmd[cmd.index("--chat_template_kwargs") + 1]) == {"enable_thinking": False}


def test_tinyllama_runtime_bos_the_training_prompt_lacks_is_said_in_the_modelfile(tokenizers_dir: Path,
                                                                                  tmp_path: Path) -> None:
    """TinyLlama's zephyr template writes no BOS while its tokenizer (and so a GGUF of the stock folder, not of
    an ftwiz run: see test_export_train_bos.py) adds one: the Modelfile says so instead of hiding it."""
    folder = tmp_path / "tinyllama"
    shutil.copytree(tokenizers_dir / "TinyLlama-1.1B-Chat-v1.0", folder)
    gguf = _vocab_gguf(folder, tmp_path / "vocab.gguf", 32000)
    spec = modelfile_spec(gguf)
    assert not spec.template.template.startswith("<s>") and "</s>" in spec.stops
    assert any("a BOS token the template does not write" in note for note in spec.notes)
    assert "# note: the GGUF asks the runtime to add BOS" in spec.render()


def test_qwen3_modelfile_says_tool_calls_need_ftwiz_serve(qwen3_gguf: Path, tokenizers_dir: Path,
                                                          tmp_path: Path) -> None:
    """Qwen3's template formats tools (as apply_chat_template shows); the Ollama TEMPLATE has no .Tools, so
    register says tool calls are not supported there and points to `ftwiz serve`. TinyLlama's has no tools."""
    from ftwiz.core.deploy.tool_support import PROBE_TOOL

    tok = real_tokenizer("Qwen3-0.6B")
    assert "ftwiz_probe_weather" in tok.apply_chat_template([{"role": "user", "content": "Hi"}], tools=[PROBE_TOOL],
                                                              tokenize=False, add_generation_prompt=True)
    spec = modelfile_spec(qwen3_gguf, enable_thinking=False)
    assert ".Tools" not in spec.template.template
    assert any("tool calls are not supported" in note and "ftwiz serve" in note for note in spec.notes)
    assert "# note: tool calls are not supported through this Modelfile" in spec.render()
    folder = tmp_path / "tinyllama"
    shutil.copytree(tokenizers_dir / "TinyLlama-1.1B-Chat-v1.0", folder)
    plain = modelfile_spec(_vocab_gguf(folder, tmp_path / "vocab.gguf", 32000))
    assert not any("tool" in note for note in plain.notes)
