"""Held-out samples: prompt/reference split, accepted formats, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.evaluate.samples import load_samples, split_path


def _write(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_last_assistant_turn_is_the_reference_and_earlier_turns_the_prompt(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "name?"}, {"role": "assistant", "content": "Ftwiz"}]},
        {"prompt": "2+2?", "reference": "4"},
        {"messages": [{"role": "text", "content": "plain pre-training text"}]},
    ])
    samples = load_samples(path, system="Be brief.")
    assert len(samples) == 2  # the plain-text record has no answer to compare with
    first, second = samples
    assert first.reference == "Ftwiz"
    assert [m["content"] for m in first.prompt] == ["Be brief.", "hi", "hello", "name?"]
    assert first.conversation[-1] == {"role": "assistant", "content": "Ftwiz"}
    assert second.prompt_text == "2+2?" and second.reference == "4"
    assert load_samples(path, max_samples=1)[0].reference == "Ftwiz"


def test_empty_split_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.jsonl", [])
    with pytest.raises(FtwizError) as info:
        load_samples(path)
    assert "test.jsonl" in str(info.value) and "no records" in info.value.what
    # validation is empty too (or absent): offering it would send the user in a circle
    assert "--split validation" not in info.value.fix and "raw text for a pre-training run" in info.value.fix
    _write(tmp_path / "validation.jsonl", [{"prompt": "a", "reference": "b"}])
    with pytest.raises(FtwizError) as info:
        load_samples(path)
    assert "--split validation" in info.value.fix
    assert str(info.value).count("test.jsonl") == 1  # the file is named once, where it is


def test_an_empty_split_says_why_and_a_split_of_raw_text_says_it_has_no_answers(tmp_path: Path) -> None:
    """A 4-document run's test.jsonl is empty: it was blamed on missing assistant answers."""
    with pytest.raises(FtwizError) as info:
        load_samples(_write(tmp_path / "test.jsonl", []))
    assert "is empty" in info.value.what and "assistant answer" not in info.value.what
    assert "20 records" in info.value.fix
    texts = _write(tmp_path / "texts.jsonl", [{"messages": [{"role": "text", "content": "raw text"}]}])
    with pytest.raises(FtwizError, match="no records with an assistant answer"):
        load_samples(texts)


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.jsonl", [{"prompt": "a", "reference": "b"}, "{not json"])
    with pytest.raises(FtwizError) as info:
        load_samples(path)
    assert info.value.where.line == 2 and "not valid JSON" in info.value.what
    _write(path, [{"question": "a"}])
    with pytest.raises(FtwizError, match="no 'messages' or 'prompt'"):
        load_samples(path)


def test_missing_split_lists_the_splits_that_exist(tmp_path: Path) -> None:
    _write(tmp_path / "train.jsonl", [{"prompt": "a", "reference": "b"}])
    _write(tmp_path / "validation.jsonl", [{"prompt": "a", "reference": "b"}])
    with pytest.raises(FtwizError) as info:
        split_path(tmp_path, "test")
    assert "no 'test' split" in info.value.what and "--split validation" in info.value.fix
    with pytest.raises(FtwizError, match="unknown split"):
        split_path(tmp_path, "dev")
    assert split_path(tmp_path, "validation") == tmp_path / "validation.jsonl"


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_tool_records_are_evaluated_with_the_prompt_training_rendered(shared_dir: Path, tmp_path: Path) -> None:
    """A split record with tool calls, a tool result and top-level tools: eval's prompt is
    ``apply_chat_template(prompt, tools=tools, add_generation_prompt=True)`` (Qwen3's tool-aware template),
    and the scored conversation is exactly what training rendered."""
    from chat_family_tokenizers import load
    from ftwiz.core.data import check_dataset
    from ftwiz.core.data.template import render_with_spans
    from ftwiz.core.evaluate.prompts import renderer_for_tokenizer

    record = {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": '{"temp_c": 3}'},
        {"role": "assistant", "content": "It is 3 °C in Oslo."}]}
    source = _write(tmp_path / "tools.jsonl", [record])
    split = _write(tmp_path / "test.jsonl", check_dataset(str(source)).samples)  # what the pipeline writes
    trained = json.loads(split.read_text(encoding="utf-8"))
    sample = load_samples(split)[0]
    assert sample.tools == [WEATHER_TOOL] and sample.reference == "It is 3 °C in Oslo."
    tok = load("qwen3")
    renderer = renderer_for_tokenizer(tok)
    prompt = renderer.render(sample.prompt, generation_prompt=True, tools=sample.tools)
    assert prompt == tok.apply_chat_template(trained["messages"][:-1], tools=trained["tools"], tokenize=False,
                                             add_generation_prompt=True)
    assert "get_weather" in prompt and '"temp_c": 3' in prompt  # the tool list, the call and its result
    full, _ = render_with_spans(tok, tok.chat_template, trained["messages"], tools=trained["tools"])
    assert renderer.render(sample.conversation, generation_prompt=False, tools=sample.tools) == full


def test_a_split_emptied_by_cutoff_len_says_so_not_that_the_dataset_was_small(tmp_path: Path) -> None:
    """A 40-record run whose 4 test records were all longer than cutoff_len has an empty test.jsonl: eval told
    the user a test split is held out 'only from 20 records on' and to 'train on more data'."""
    from ftwiz.core.data.held_out import mark_held_out
    from ftwiz.core.data.pipeline import write_rejects
    from ftwiz.core.data.records import Reject

    path = _write(tmp_path / "test.jsonl", [])
    write_rejects([mark_held_out(Reject("d.jsonl", n, n - 1, "over_max_length", f"{300 + n} tokens > cutoff_len 64"),
                                 split) for n, split in ((3, "test"), (5, "test"), (7, "validation"))]
                  + [Reject("d.jsonl", 9, 8, "over_max_length", "301 tokens > cutoff_len 64")],
                  tmp_path / "rejects.jsonl")
    with pytest.raises(FtwizError) as info:
        load_samples(path)
    assert "20 records" not in info.value.fix and "more data" not in info.value.fix
    assert "all 2 test records" in info.value.what and "over_max_length 2" in info.value.what
    assert "rejects.jsonl" in info.value.what and "cutoff_len" in info.value.fix


def test_a_split_the_recipe_turned_off_says_so(tmp_path: Path) -> None:
    """A run trained with test_size: 0 has an empty test.jsonl: eval said a test split is held out 'only from 20
    records on' and to 'train on more data' (the run had 40)."""
    (tmp_path / "recipe.yaml").write_text("model_name_or_path: demo\ndataset: [d.jsonl]\ntest_size: 0\n",
                                          encoding="utf-8")
    (tmp_path / "data").mkdir()
    with pytest.raises(FtwizError) as info:
        load_samples(_write(tmp_path / "data" / "test.jsonl", []))
    assert "test_size: 0" in info.value.what and "20 records" not in info.value.fix
    assert "test_size: 0.1" in info.value.fix and "--data FILE" in info.value.fix


def test_an_answer_marked_weight_0_is_context_and_the_last_learned_answer_is_the_reference(
        tmp_path: Path, tiny_qwen2: Path) -> None:
    """An OpenAI-format record whose last assistant turn has "weight": 0 (context, not learned) was scored
    against that turn, an answer training never taught. Oracle: the spans training learns
    (render_with_spans: the masks)."""
    import transformers
    from ftwiz.core.data.template import render_with_spans

    messages = [{"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris.", "weight": 1},
                {"role": "user", "content": "And of Spain?"},
                {"role": "assistant", "content": "Lisbon, I think.", "weight": 0}]
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    text, spans = render_with_spans(tokenizer, tokenizer.chat_template, messages)
    learned = [text[a:b] for a, b in spans]
    assert len(learned) == 1 and learned[0].startswith("Paris.")
    sample = load_samples(_write(tmp_path / "test.jsonl", [{"messages": messages}]))[0]
    assert learned[0].startswith(sample.reference) and sample.reference == "Paris."
    assert [m["content"] for m in sample.prompt] == ["Capital of France?"]
