"""The model is served in exactly the format it was trained on, over the real tokenizers users bring.

For each tokenizer in ../shared/tokenizers (Qwen2 with its own template, Qwen3's thinking template and a
Phi-3 template, Mistral v0.3, TinyLlama) a tiny random-weight model carrying the REAL tokenizer (real
vocabulary, hidden 32, one layer) is trained for two LoRA steps with (a) the model's own template and
(b) a named one, then merged, exported to Q8_0 and given a Modelfile. The oracles:

- training's text is what ``core/data/template`` rendered for the training data (transformers' Jinja);
- the GGUF's template is rendered by llama-cpp-python's Jinja2ChatFormatter (what ``ftwiz chat`` and
  the llama.cpp server send);
- the Modelfile's TEMPLATE is rendered by our Go-template interpreter standing in for Ollama, and the
  prompt Ollama sends is tokenized by llama.cpp (with the BOS the GGUF asks the runtime to add).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers"
DATA = [
    {"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                  {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]} for a in range(6) for b in range(3)
] + [
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
                  {"role": "user", "content": f"And another, number {i}?"},
                  {"role": "assistant", "content": "Green."}]} for i in range(6)
]
PROBES = [
    [{"role": "user", "content": "Hello there"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello there"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Name a fruit."}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a fruit."},
     {"role": "assistant", "content": "Apple."}, {"role": "user", "content": "Another?"}],
]
# (tokenizer folder, architecture, named template a user of that model would port from LLaMA-Factory)
MODELS = {
    "qwen2": ("Qwen2-1.5B-Instruct-Boundless", "qwen2", "alpaca"),
    "qwen3": ("Qwen3-0.6B", "qwen3", "qwen3"),
    "phi3": ("Phi-3-mini-4k-instruct", "phi3", "phi"),
    "mistral": ("Mistral-7B-Instruct-v0.3", "mistral", "mistral"),
    "tinyllama": ("TinyLlama-1.1B-Chat-v1.0", "llama", "llama2"),
}
# Cells that depend on work landing in other areas (kept visible, not hidden): see the reasons.
PENDING: dict[tuple[str, str], str] = {}


def _tokenizer_folder(key: str, out: Path) -> Path:
    """A folder ``AutoTokenizer`` loads offline, made from the shared files only."""
    folder, _, _ = MODELS[key]
    src = SHARED / folder
    out.mkdir(parents=True, exist_ok=True)
    if key == "qwen3":  # Qwen3 ships Qwen2's vocabulary files unchanged
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(SHARED / MODELS["qwen2"][0] / name, out / name)
        shutil.copy(src / "tokenizer_config.json", out / "tokenizer_config.json")
        return out
    if key == "mistral":  # the SentencePiece model only: transformers converts it, as users load it
        from transformers import LlamaTokenizer

        shutil.copy(src / "tokenizer.model", out / "tokenizer.model")
        tok = LlamaTokenizer.from_pretrained(out)
        tok.chat_template = (src / "chat_template.jinja").read_text(encoding="utf-8")
        tok.save_pretrained(out)
        return out
    for item in src.iterdir():
        if item.is_file() and item.name != "config.json":
            shutil.copy(item, out / item.name)
    return out


def _tiny_model(key: str, out: Path) -> Path:
    """A random-weight model of the family's architecture with the real tokenizer (vocab x 32 embedding)."""
    import torch
    import transformers

    _, arch, _ = MODELS[key]
    tok_dir = _tokenizer_folder(key, out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tok_dir)
    eos = tokenizer.eos_token_id
    common = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, rms_norm_eps=1e-6,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
    config = {
        "qwen2": lambda: transformers.Qwen2Config(**common, tie_word_embeddings=True),
        "qwen3": lambda: transformers.Qwen3Config(**common, head_dim=32, tie_word_embeddings=True),
        "phi3": lambda: transformers.Phi3Config(**common, tie_word_embeddings=False),
        "mistral": lambda: transformers.MistralConfig(**common, head_dim=16, tie_word_embeddings=False),
        "llama": lambda: transformers.LlamaConfig(**common, tie_word_embeddings=False),
    }[arch]()
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    end_ids = sorted({i for i in (eos, *_end_of_turn_ids(tokenizer)) if i is not None})
    model.generation_config = transformers.GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=end_ids)
    model.save_pretrained(out, safe_serialization=True)
    return out


def _end_of_turn_ids(tokenizer) -> list[int]:
    """The control tokens that close an assistant turn in the tokenizer's own template."""
    return [tokenizer.convert_tokens_to_ids(t) for t in _turn_enders(tokenizer, tokenizer.chat_template)]


def _turn_enders(tokenizer, template: str) -> list[str]:
    """Special tokens written right after an assistant's text: what must stop generation."""
    from ftwiz.core.chat_templates import render_chat, special_tokens_of

    marker = "ZQXJ"
    text = render_chat(template, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}],
                       add_generation_prompt=False, special_tokens=special_tokens_of(tokenizer))
    tail = text[text.index(marker) + len(marker):]
    specials = sorted((t for t in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()) if t),
                      key=len, reverse=True)
    tail = tail.lstrip()
    return [next(t for t in specials if tail.startswith(t))] if any(tail.startswith(t) for t in specials) else []


@pytest.fixture(scope="module")
def shared_tokenizers() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the real tokenizers are not beside this checkout ({SHARED}); they come with ../shared")
    return SHARED


@pytest.fixture(scope="module")
def tiny_models(shared_tokenizers: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {key: _tiny_model(key, tmp_path_factory.mktemp(f"real-{key}")) for key in MODELS}


def _train(model_dir: Path, data: Path, template: str | None, name: str, enable_thinking: bool | None = None):
    from ftwiz.core.recipe import parse_recipe
    from ftwiz.core.train.runner import train

    recipe = parse_recipe({"model_name_or_path": str(model_dir), "dataset": [str(data)], "finetuning_type": "lora",
                           "template": template, "max_steps": 2, "cutoff_len": 128, "lora_rank": 4,
                           "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "val_size": 0.0,
                           "test_size": 0.0, "near_dedup_threshold": None, "learning_rate": 1e-3,
                           "save_steps": 100, "warmup_ratio": 0.0, "run_name": name, "export_quant": ["Q8_0"],
                           "enable_thinking": enable_thinking})
    result = train(recipe)
    assert result.status == "completed"
    return result.run_dir


def _cells() -> list:
    cells = []
    for key in MODELS:
        for which in ("own", "named"):
            reason = PENDING.get((key, which)) or PENDING.get((key, "*"))
            marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
            cells.append(pytest.param(key, which, marks=marks, id=f"{key}-{which}"))
    return cells


@pytest.mark.slow
@pytest.mark.parametrize(("key", "which"), _cells())
def test_served_prompts_are_the_training_prompts(tiny_models: dict[str, Path], tmp_path: Path, key: str,
                                                 which: str) -> None:
    from ftwiz.core.chat_templates import TemplateOfRecord, special_tokens_of
    from ftwiz.core.data.template import _render
    from ftwiz.core.deploy.chat import chat_formatter
    from ftwiz.core.deploy.modelfile import modelfile_spec
    from ftwiz.core.deploy.templates import ollama_prompt
    from ftwiz.core.evaluate.prompts import renderer_for_tokenizer
    from ftwiz.core.evaluate.targets import resolve_target
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.export.space_prefix import split_served
    from ftwiz.core.gguf_info import read_gguf_info
    from transformers import AutoTokenizer

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in DATA), encoding="utf-8")
    named = MODELS[key][2]
    thinking = False if (key, which) == ("qwen3", "named") else None  # the recipe turns thinking off
    run_dir = _train(tiny_models[key], data, None if which == "own" else named, f"fid-{key}-{which}", thinking)
    card = json.loads((run_dir / "run_card.json").read_text(encoding="utf-8"))
    record = TemplateOfRecord.from_card(card)
    assert record is not None and record.template
    assert card["fingerprint"]["template"] == card["template_hash"] == record.hash  # the data used this very text
    base_tok = AutoTokenizer.from_pretrained(tiny_models[key])
    assert record.template == (base_tok.chat_template if which == "own" else record.template)
    assert (record.name == named) == (which == "named")
    adapter_tok = AutoTokenizer.from_pretrained(run_dir / "adapter")
    assert adapter_tok.chat_template == record.template

    result = export_model(run_dir, ["Q8_0"])
    gguf = Path(result.gguf_paths[0])
    info = read_gguf_info(gguf)
    # the GGUF ships the training template, byte for byte, after at most the documented leading space that
    # stands for the '▁' transformers puts at the start of a text (TinyLlama's zephyr; core/export/space_prefix)
    prefix, shipped = split_served(info.chat_template)
    assert shipped == record.template

    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=256, vocab_only=True, verbose=False)
    if key == "qwen3":  # export --verify's template checks (the logits part of verify is tested elsewhere)
        from ftwiz.core.export.verify import _chat_check, _thinking_check

        chat_check, _ = _chat_check(llm, adapter_tok, record)
        thinking_check = _thinking_check(llm, adapter_tok, record)
        assert chat_check.passed and thinking_check is not None and thinking_check.passed, thinking_check
    tokens = special_tokens_of(adapter_tok)
    formatter, chat_stops = chat_formatter(info)
    spec = modelfile_spec(gguf)
    system_ok = spec.template.system_supported
    for messages in PROBES:
        if messages[0]["role"] == "system" and not system_ok:
            continue
        trained = _render(adapter_tok, record.template, messages, generation_prompt=True)
        served = formatter(messages=messages).prompt  # as `ftwiz chat` and the llama.cpp server send it
        assert served == prefix + trained, f"llama.cpp chat prompt differs for {len(messages)} messages"
        ollama_text = ollama_prompt(spec.template.template, messages)
        ollama_ids = llm.tokenize(ollama_text.encode("utf-8"), add_bos=info.add_bos, special=True)
        trained_ids = adapter_tok(trained, add_special_tokens=False)["input_ids"]
        if info.bos_token and not trained.startswith(info.bos_token):  # training had no BOS: serving adds none
            assert not info.add_bos, "the GGUF asks the runtime for a BOS training never had"
        assert ollama_ids == trained_ids, f"Ollama's prompt tokens differ for {len(messages)} messages"
        # the template's own text (any leading space included) as llama.cpp tokenizes it: training's tokens
        served_ids = llm.tokenize(served.encode("utf-8"), add_bos=False, special=True)
        assert served_ids == trained_ids, f"llama.cpp's chat prompt tokens differ for {len(messages)} messages"
        bos = adapter_tok.bos_token_id
        if bos is not None and (info.add_bos or trained.startswith(info.bos_token or "\0")):
            assert ollama_ids[0] == bos and ollama_ids[1] != bos, "not exactly one BOS in front of the prompt"
    enders = _turn_enders(adapter_tok, record.template)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    for ender in enders:
        assert ender in spec.stops and ender in chat_stops, f"{ender} does not stop generation"
        assert llama_cpp.llama_vocab_is_eog(vocab, adapter_tok.convert_tokens_to_ids(ender))
    llm.close()

    target = resolve_target(str(run_dir))
    assert target.chat_template == record.template
    renderer = renderer_for_tokenizer(adapter_tok, target.template_name, template=target.chat_template,
                                      enable_thinking=target.enable_thinking)
    assert renderer.render(PROBES[2], generation_prompt=True) == _render(adapter_tok, record.template, PROBES[2],
                                                                         generation_prompt=True)
    assert tokens  # the adapter tokenizer kept its special tokens


@pytest.mark.slow
@pytest.mark.parametrize("base", ["chatml", "template-less"])
def test_alpaca_run_is_exported_verified_registered_and_chatted_in_alpaca(tiny_qwen2: Path, tmp_path: Path,
                                                                          base: str, capsys) -> None:
    """Issue 15's two cases: ``template: alpaca`` on a ChatML base and on a base without a template."""
    from ftwiz.core.chat_templates import NAMED_TEMPLATES, write_template_files
    from ftwiz.core.cli import main as cli_main
    from ftwiz.core.deploy.chat import chat_formatter
    from ftwiz.core.deploy.templates import ollama_prompt
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.export.verify import verify_gguf
    from ftwiz.core.gguf_info import read_gguf_info

    model = tiny_qwen2
    if base == "template-less":
        model = tmp_path / "bare"
        shutil.copytree(tiny_qwen2, model)
        config = json.loads((model / "tokenizer_config.json").read_text(encoding="utf-8"))
        config.pop("chat_template", None)
        (model / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
        (model / "chat_template.jinja").unlink(missing_ok=True)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in DATA), encoding="utf-8")
    run_dir = _train(model, data, "alpaca", f"alpaca-{base}")
    alpaca = NAMED_TEMPLATES["alpaca"]

    result = export_model(run_dir, ["Q8_0"], verify=True)
    report = result.reports[0]
    assert report.passed, [(c.name, c.detail) for c in report.checks]
    assert "'alpaca'" in report.chat_template.detail
    gguf = Path(result.gguf_paths[0])
    assert read_gguf_info(gguf).chat_template == alpaca

    modelfile = tmp_path / "Modelfile"
    assert cli_main(["register", str(run_dir), "--modelfile", str(modelfile)]) == 0
    text = modelfile.read_text(encoding="utf-8")
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    question = [{"role": "user", "content": "What is 2 plus 2?"}]
    assert ollama_prompt(template, question).endswith("### Instruction:\nWhat is 2 plus 2?\n\n### Response:\n")
    formatter, stops = chat_formatter(read_gguf_info(gguf))
    assert formatter(messages=question).prompt.endswith("### Instruction:\nWhat is 2 plus 2?\n\n### Response:\n")
    assert "<|im_end|>" in stops  # alpaca's turn ends with the tokenizer's EOS
    assert cli_main(["chat", str(run_dir), "--once", "What is 2 plus 2?", "--max-tokens", "4", "--temperature", "0"]) == 0

    # A GGUF carrying another template than training's (what export used to ship) fails verify loudly.
    stale = tmp_path / "stale"
    shutil.copytree(run_dir / "merged", stale)
    write_template_files(stale, NAMED_TEMPLATES["chatml"])
    wrong = export_model(stale, ["F16"], out=tmp_path / "wrong.gguf")
    report = verify_gguf(wrong.gguf_paths[0], run_dir / "merged")
    assert report.chat_template.passed is False and "training used ('alpaca'" in report.chat_template.detail
    assert not report.passed
