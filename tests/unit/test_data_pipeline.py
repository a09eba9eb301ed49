"""Formats, templates and loss masks on real sample data and multi-turn conversations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import check_dataset, prepare_for_training
from ftwiz.core.data.clean import exact_dedup, near_dedup, remove_leakage, split
from ftwiz.core.data.records import Conversation
from ftwiz.core.data.template import render_with_spans, tokenize_with_labels, trained_text
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import parse_recipe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
MULTI_TURN = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy, please?"},
    {"role": "assistant", "content": "Rome."},
]


@pytest.fixture(scope="module")
def qwen_tok(tiny_qwen2: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_qwen2)


@pytest.fixture(scope="module")
def llama_tok(tiny_llama: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_llama)


def _learned(tok, messages, **options) -> str:
    text, spans = render_with_spans(tok, tok.chat_template, messages, **options)
    row = tokenize_with_labels(tok, [text], [spans])
    return trained_text(tok, row["input_ids"][0], row["labels"][0])


def test_every_assistant_turn_is_learned_and_nothing_else(qwen_tok) -> None:
    learned = _learned(qwen_tok, MULTI_TURN)
    assert learned == "Paris.<|im_end|>\nRome.<|im_end|>\n"


def test_last_turn_only_and_train_on_prompt(qwen_tok) -> None:
    assert _learned(qwen_tok, MULTI_TURN, mask_history=True) == "Rome.<|im_end|>\n"
    everything = _learned(qwen_tok, MULTI_TURN, train_on_prompt=True)
    assert "You are terse." in everything and "capital of France" in everything


def test_llama3_template_masks_and_has_a_single_bos(llama_tok) -> None:
    text, spans = render_with_spans(llama_tok, llama_tok.chat_template, MULTI_TURN)
    row = tokenize_with_labels(llama_tok, [text], [spans])
    ids = row["input_ids"][0]
    assert ids.count(llama_tok.bos_token_id) == 1 and ids[0] == llama_tok.bos_token_id
    assert trained_text(llama_tok, ids, row["labels"][0]) == "Paris.<|eot_id|>Rome.<|eot_id|>"


def test_shared_alpaca_identity_and_dpo_samples_load_render_and_mask(shared_dir: Path, qwen_tok) -> None:
    identity = check_dataset(str(shared_dir / "datasets" / "identity.json"), variables={"name": "Wizzy",
                                                                                          "author": "ftwiz"})
    assert identity.kept == identity.read == 91 and identity.unfilled_placeholders == []
    assert "Wizzy" in identity.samples[0]["messages"][-1]["content"]
    dpo = check_dataset(str(shared_dir / "datasets" / "dpo_en_demo.json"))
    assert dpo.formats[next(iter(dpo.formats))][0] == "dpo" and dpo.kept == dpo.read
    assert dpo.samples[0]["chosen"] and dpo.samples[0]["rejected"]
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": [str(shared_dir / "datasets" / "alpaca_en_demo.json")],
                           "cutoff_len": 2048, "near_dedup_threshold": None})
    prepared = prepare_for_training(recipe, qwen_tok)
    assert len(prepared.train) + len(prepared.validation) + len(prepared.splits["test"]) > 900
    row = prepared.train[0]
    learned = trained_text(qwen_tok, row["input_ids"], row["labels"])
    record = prepared.splits["train"][0]["messages"]
    assert learned.startswith(record[-1]["content"]) and record[0]["content"] not in learned


def test_sharegpt_and_openai_tool_calls_normalise(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"conversations": [
        {"from": "system", "value": "Be kind"}, {"from": "human", "value": "Weather?"},
        {"from": "function_call", "value": '{"name": "weather"}'}, {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "It is sunny."}]}) + "\n", encoding="utf-8")
    report = check_dataset(str(path))
    roles = [m["role"] for m in report.samples[0]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    tools = tmp_path / "tools.jsonl"
    tools.write_text(json.dumps({"messages": [
        {"role": "user", "content": "Add 2 and 3"},
        {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "add"}}]},
        {"role": "tool", "content": "5"}, {"role": "assistant", "content": "5"}]}) + "\n", encoding="utf-8")
    sample = check_dataset(str(tools)).samples[0]["messages"]
    # the call stays a call (what chat templates render with tools=), not JSON pasted into the text
    assert sample[1] == {"role": "assistant", "content": "",
                         "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {}}}]}
    assert sample[3]["content"] == "5"


def test_dataset_info_json_is_read_unchanged(tmp_path: Path) -> None:
    (tmp_path / "qa.json").write_text(json.dumps([{"q": "Hi?", "a": "Hello."}, {"q": "Bye?", "a": "Ciao."}]))
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"my_qa": {"file_name": "qa.json", "formatting": "alpaca", "columns": {"prompt": "q", "response": "a"}}}))
    report = check_dataset("my_qa", dataset_dir=str(tmp_path))
    assert report.kept == 2 and report.samples[1]["messages"][-1]["content"] == "Ciao."


def test_exact_and_near_duplicates() -> None:
    def conv(q: str, a: str) -> Conversation:
        return Conversation([{"role": "user", "content": q}, {"role": "assistant", "content": a}])

    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    convs = [conv(base, "yes"), conv(base, "yes"), conv(base + " again", "yes"), conv("something else", "no")]
    kept, dropped = exact_dedup(convs)
    assert len(kept) == 3 and len(dropped) == 1
    kept, near = near_dedup(kept, threshold=0.7)
    assert len(kept) == 2 and len(near) == 1


def test_split_is_deterministic_for_a_seed_and_leak_free() -> None:
    convs = [Conversation([{"role": "user", "content": f"q{i % 90}"}, {"role": "assistant", "content": f"a{i}"}])
             for i in range(100)]
    one, two, other = split(convs, 0.1, 0.1, 7), split(convs, 0.1, 0.1, 7), split(convs, 0.1, 0.1, 8)
    assert [c.messages for c in one["test"]] == [c.messages for c in two["test"]]
    assert [c.messages for c in one["test"]] != [c.messages for c in other["test"]]
    moved = remove_leakage(one)
    train_prompts = {c.messages[0]["content"] for c in one["train"]}
    held = [c.messages[0]["content"] for c in one["validation"] + one["test"]]
    assert moved > 0 and not train_prompts & set(held)


def test_over_length_drop_and_truncate_are_counted(qwen_tok) -> None:
    base = {"model_name_or_path": "x", "dataset": [str(FIXTURES / "huge_answer.jsonl")], "cutoff_len": 64,
            "val_size": 0.0, "test_size": 0.0}
    dropped = prepare_for_training(parse_recipe(base), qwen_tok)
    assert len(dropped.train) == 2 and dropped.stats["train"]["dropped"] == 1
    assert any(r.reason == "over_max_length" and r.line == 2 for r in dropped.rejects)
    truncated = prepare_for_training(parse_recipe({**base, "overlength": "truncate"}), qwen_tok)
    assert len(truncated.train) == 3 and truncated.stats["train"]["truncated"] == 1
    assert max(len(ids) for ids in truncated.train["input_ids"]) == 64


def test_prepare_saves_splits_and_hashes_change_with_the_data(tmp_path: Path, qwen_tok) -> None:
    recipe = parse_recipe({"model_name_or_path": "demo", "dataset": ["demo"], "cutoff_len": 128})
    prepared = prepare_for_training(recipe, qwen_tok)
    out = prepared.save_splits(tmp_path / "data")
    assert {p.name for p in out.iterdir()} >= {"train.jsonl", "validation.jsonl", "test.jsonl", "rejects.jsonl",
                                               "stats.json"}
    test_rows = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert test_rows and test_rows[0]["messages"][-1]["role"] == "assistant"
    changed = tmp_path / "demo_copy.jsonl"
    changed.write_text((out / "train.jsonl").read_text()[:-1] + "\n", encoding="utf-8")
    other = prepare_for_training(parse_recipe({**recipe.model_dump(), "dataset": [str(changed)]}), qwen_tok)
    assert other.dataset_hash != prepared.dataset_hash and other.template_hash == prepared.template_hash


def test_tokenizer_without_template_needs_a_named_one(qwen_tok) -> None:
    import copy

    bare = copy.deepcopy(qwen_tok)
    bare.chat_template = None
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": ["demo"], "max_samples": 20})
    with pytest.raises(FtwizError, match="no chat template"):
        prepare_for_training(recipe, bare)
    prepared = prepare_for_training(parse_recipe({**recipe.model_dump(), "template": "alpaca"}), bare)
    assert "### Response:" in bare.decode(prepared.train[0]["input_ids"])


@pytest.mark.parametrize("name", ["Qwen2-1.5B-Instruct-Boundless", "Phi-3-mini-4k-instruct"])
def test_fast_render_is_exactly_what_apply_chat_template_renders(shared_dir: Path, name: str) -> None:
    from ftwiz.core.data.template import _render
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shared_dir / "tokenizers" / name)
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <b>there</b>"},
                    {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4"}]
    for end in range(1, len(conversation) + 1):
        for prompt in (True, False):
            expected = tokenizer.apply_chat_template(conversation[:end], tokenize=False, add_generation_prompt=prompt)
            assert _render(tokenizer, tokenizer.chat_template, conversation[:end], generation_prompt=prompt) == expected
