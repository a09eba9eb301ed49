"""Every field users' datasets carry reaches the conversation that is trained (issue 16, item 2).

Each test is a record shape from a real user's file that ftwiz used to drop silently (ShareGPT
``system``, tool calls, glaive function calls) or accept although it cannot be trained (images).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.data import check_dataset
from ftwiz.core.data.records import Conversation

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
BIKE_SYSTEM = "You are a bike-shop assistant."

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _sharegpt(question: str, answer: str, **extra) -> dict:
    return {**extra, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}


# --- system prompts -------------------------------------------------------------------------------------


def test_sharegpt_record_system_is_trained_not_dropped(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "shop.jsonl", [_sharegpt("Do you fix brakes?", "Yes, same day.", system=BIKE_SYSTEM),
                                           _sharegpt("Open on Sunday?", "No, Monday to Saturday.", system=BIKE_SYSTEM)])
    report = check_dataset(str(path))
    assert report.kept == 2 and not report.rejects
    for sample in report.samples:
        assert sample["messages"][0] == {"role": "system", "content": BIKE_SYSTEM}
        assert [m["role"] for m in sample["messages"]] == ["system", "user", "assistant"]


def test_dataset_info_columns_system_maps_the_users_column(tmp_path: Path) -> None:
    _jsonl(tmp_path / "shop.jsonl", [_sharegpt("Do you fix brakes?", "Yes.", persona=BIKE_SYSTEM),
                                     _sharegpt("Any e-bikes?", "Two models.", persona=BIKE_SYSTEM)])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"shop": {
        "file_name": "shop.jsonl", "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "persona"}}}), encoding="utf-8")
    report = check_dataset("shop", dataset_dir=str(tmp_path))
    assert report.kept == 2
    assert all(s["messages"][0] == {"role": "system", "content": BIKE_SYSTEM} for s in report.samples)


def test_system_turn_in_the_conversation_overrides_the_system_column(tmp_path: Path) -> None:
    """LLaMA-Factory: the system_tag turn "can override system column"; an empty system means none."""
    record = {"system": "column system", "conversations": [
        {"from": "system", "value": "turn system"}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    empty = _sharegpt("Hi", "Hello", system="")
    report = check_dataset(str(_jsonl(tmp_path / "s.jsonl", [record, empty])))
    assert [m["content"] for m in report.samples[0]["messages"]] == ["turn system", "Hi", "Hello"]
    assert [m["role"] for m in report.samples[1]["messages"]] == ["user", "assistant"]


def test_alpaca_system_history_and_tools_are_kept(tmp_path: Path) -> None:
    record = {"system": BIKE_SYSTEM, "history": [["Hi", "Hello! How can I help?"]], "instruction": "Weather in Oslo?",
              "input": "", "output": "Let me check.", "tools": json.dumps([WEATHER_TOOL["function"]])}
    report = check_dataset(str(_jsonl(tmp_path / "a.jsonl", [record])), formatting="alpaca")
    sample = report.samples[0]
    assert [(m["role"], m["content"]) for m in sample["messages"]] == [
        ("system", BIKE_SYSTEM), ("user", "Hi"), ("assistant", "Hello! How can I help?"),
        ("user", "Weather in Oslo?"), ("assistant", "Let me check.")]
    assert sample["tools"] == [WEATHER_TOOL]


def test_preference_pair_keeps_input_history_and_system(tmp_path: Path) -> None:
    record = {"system": BIKE_SYSTEM, "history": [["Hi", "Hello!"]], "instruction": "Translate:", "input": "velo",
              "chosen": "bike", "rejected": "car"}
    sample = check_dataset(str(_jsonl(tmp_path / "pairs.jsonl", [record]))).samples[0]
    assert [(m["role"], m["content"]) for m in sample["messages"]] == [
        ("system", BIKE_SYSTEM), ("user", "Hi"), ("assistant", "Hello!"), ("user", "Translate:\nvelo")]  # LLaMA-Factory joins them with one newline
    assert (sample["chosen"], sample["rejected"]) == ("bike", "car")


# --- OpenAI tool calls -------------------------------------------------------------------------------------


def _tool_record(content: str | None) -> dict:
    return {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": content, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": '{"temp_c": 3}'},
        {"role": "assistant", "content": "It is 3 °C in Oslo."}]}


@pytest.mark.parametrize("content", ["", None, "Let me look that up."])
def test_openai_tool_call_turn_is_kept_with_its_call_and_the_tools(tmp_path: Path, content: str | None) -> None:
    report = check_dataset(str(_jsonl(tmp_path / "tools.jsonl", [_tool_record(content)])))
    assert report.kept == 1, [r.message for r in report.rejects]
    sample = report.samples[0]
    assert sample["tools"] == [WEATHER_TOOL]
    call_turn, result = sample["messages"][1], sample["messages"][2]
    assert call_turn["role"] == "assistant" and call_turn["content"] == (content or "")
    # arguments decoded: HF templates (Qwen's) apply tojson to them, a string would be double-encoded
    assert call_turn["tool_calls"] == [{"type": "function", "id": "call_1",
                                        "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    assert result == {"role": "tool", "content": '{"temp_c": 3}', "tool_call_id": "call_1", "name": "get_weather"}


def test_assistant_turn_with_neither_text_nor_tool_calls_is_still_rejected(tmp_path: Path) -> None:
    record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]}
    report = check_dataset(str(_jsonl(tmp_path / "e.jsonl", [record, _tool_record("")])))
    assert report.kept == 1 and report.rejects[0].reason == "empty_assistant_turn" and report.rejects[0].line == 1


def test_tool_result_without_a_call_and_bad_arguments_are_rejected_by_name(tmp_path: Path) -> None:
    orphan = {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "42"},
                           {"role": "assistant", "content": "42"}]}
    bad_args = _tool_record("")
    bad_args["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"city": '
    report = check_dataset(str(_jsonl(tmp_path / "bad.jsonl", [orphan, bad_args, _tool_record("")])))
    assert report.kept == 1
    assert (report.rejects[0].reason, report.rejects[0].field) == ("roles_out_of_order", "messages[1]")
    assert report.rejects[1].reason == "bad_tool_json" and report.rejects[1].line == 2
    assert report.rejects[1].field == "messages[1].tool_calls[0].arguments"


# --- ShareGPT function_call / observation (LLaMA-Factory's glaive shape) ----------------------------------


def test_glaive_function_call_and_observation_become_tool_calls_and_tool_results(tmp_path: Path) -> None:
    record = {"conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}'},
        {"from": "observation", "value": '{"temp_c": 3}'},
        {"from": "gpt", "value": "It is 3 °C in Oslo."}],
        "system": BIKE_SYSTEM, "tools": json.dumps([WEATHER_TOOL["function"]])}
    report = check_dataset(str(_jsonl(tmp_path / "glaive.jsonl", [record])))
    assert report.kept == 1, [r.message for r in report.rejects]
    assert report.samples[0] == {"tools": [WEATHER_TOOL], "messages": [
        {"role": "system", "content": BIKE_SYSTEM},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": '{"temp_c": 3}'},
        {"role": "assistant", "content": "It is 3 °C in Oslo."}]}


def test_dataset_info_tags_map_custom_roles_and_keep_tool_turns(tmp_path: Path) -> None:
    record = {"chat": [{"speaker": "client", "text": "Weather in Oslo?"},
                       {"speaker": "call", "text": '{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}'},
                       {"speaker": "result", "text": "3 C"},
                       {"speaker": "bot", "text": "It is 3 °C."}], "funcs": [WEATHER_TOOL["function"]], "sys": "Be brief."}
    _jsonl(tmp_path / "custom.jsonl", [record])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"custom": {
        "file_name": "custom.jsonl", "formatting": "sharegpt",
        "columns": {"messages": "chat", "system": "sys", "tools": "funcs"},
        "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "client", "assistant_tag": "bot",
                 "observation_tag": "result", "function_tag": "call", "system_tag": "sys_turn"}}}), encoding="utf-8")
    report = check_dataset("custom", dataset_dir=str(tmp_path))
    assert report.kept == 1, [r.message for r in report.rejects]
    messages = report.samples[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert report.samples[0]["tools"] == [WEATHER_TOOL]


def test_dataset_info_pretraining_entry_with_only_a_prompt_column_is_text(tmp_path: Path) -> None:
    _jsonl(tmp_path / "c4_demo.jsonl", [{"text": "A document.\nTwo lines."}, {"text": "Another one."}])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"c4_demo": {
        "file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}}}), encoding="utf-8")  # as LLaMA-Factory ships it
    report = check_dataset("c4_demo", dataset_dir=str(tmp_path))
    assert report.kept == 2 and report.samples[0]["messages"] == [{"role": "text", "content": "A document.\nTwo lines."}]


def test_dataset_info_with_an_unknown_formatting_is_a_clear_error(tmp_path: Path) -> None:
    from ftwiz.core.errors import FtwizError

    _jsonl(tmp_path / "d.jsonl", [_sharegpt("Hi", "Hello")])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.jsonl", "formatting": "sharegpt4v"}}),
                                                encoding="utf-8")
    with pytest.raises(FtwizError, match="sharegpt4v") as info:
        check_dataset("d", dataset_dir=str(tmp_path))
    assert info.value.where.field == "d.formatting" and "sharegpt" in info.value.fix


# --- images -----------------------------------------------------------------------------------------------


def test_records_with_images_are_refused_clearly_naming_line_and_field(tmp_path: Path) -> None:
    records = [_sharegpt("<image>What colour is the bus?", "Red.", images=["bus.jpg"]),
               _sharegpt("Hi", "Hello", images=[]),
               {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                          {"type": "image_url", "image_url": {"url": "x.png"}}]},
                             {"role": "assistant", "content": "A cat."}]}]
    report = check_dataset(str(_jsonl(tmp_path / "vision.jsonl", records)), formatting="sharegpt")
    assert report.kept == 1
    reject = report.rejects[0]
    assert (reject.reason, reject.line, reject.field) == ("images_not_supported", 1, "images")
    assert "image" in reject.message and "text-only" in reject.message
    openai = check_dataset(str(_jsonl(tmp_path / "vision2.jsonl", records[2:])))
    assert openai.rejects[0].reason == "images_not_supported"
    assert openai.rejects[0].field == "messages[0].content[1]"


def test_dataset_info_columns_images_is_refused_not_ignored(tmp_path: Path) -> None:
    _jsonl(tmp_path / "mm.jsonl", [{"instruction": "Describe it.", "output": "A bus.", "pics": ["bus.jpg"]}])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mm": {
        "file_name": "mm.jsonl", "columns": {"prompt": "instruction", "response": "output", "images": "pics"}}}),
        encoding="utf-8")
    report = check_dataset("mm", dataset_dir=str(tmp_path))
    assert report.kept == 0 and report.rejects[0].reason == "images_not_supported"


# --- the contract with rendering --------------------------------------------------------------------------


def test_conversation_json_round_trip_keeps_tools_and_tool_calls(tmp_path: Path) -> None:
    report = check_dataset(str(_jsonl(tmp_path / "tools.jsonl", [_tool_record("")])))
    data = report.samples[0]
    again = Conversation.from_json(json.loads(json.dumps(data)))
    assert again.to_json() == data and again.tools == [WEATHER_TOOL]
    assert Conversation([{"role": "user", "content": "x"}]).to_json() == {"messages": [{"role": "user", "content": "x"}]}


def _qwen3_template() -> str:
    config = SHARED / "tokenizers" / "Qwen3-0.6B" / "tokenizer_config.json"
    if not config.is_file():
        pytest.skip(f"needs the shared tokenizers beside the checkout ({config} is absent)")
    return json.loads(config.read_text(encoding="utf-8"))["chat_template"]


@pytest.mark.parametrize("shape", ["openai", "glaive"])
def test_normalised_tool_records_render_as_the_documented_hf_tool_conversation(tmp_path: Path, shape: str) -> None:
    """Oracle: transformers' apply_chat_template on the HF-documented tool-use conversation (arguments as a
    dict, tools as JSON schemas); our normalised record must render to exactly the same text."""
    from ftwiz.core.tiny.tokenizer import build_tokenizer

    template = _qwen3_template()
    if shape == "openai":
        record = _tool_record("")
    else:
        record = {"tools": json.dumps([WEATHER_TOOL["function"]]), "conversations": [
            {"from": "human", "value": "Weather in Oslo?"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
            {"from": "observation", "value": '{"temp_c": 3}'},
            {"from": "gpt", "value": "It is 3 °C in Oslo."}]}
    sample = check_dataset(str(_jsonl(tmp_path / f"{shape}.jsonl", [record]))).samples[0]
    documented = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                               "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": '{"temp_c": 3}'},
        {"role": "assistant", "content": "It is 3 °C in Oslo."}]
    tokenizer = build_tokenizer("chatml")
    expected = tokenizer.apply_chat_template(documented, tools=[WEATHER_TOOL], chat_template=template, tokenize=False)
    ours = tokenizer.apply_chat_template(sample["messages"], tools=sample["tools"], chat_template=template,
                                         tokenize=False)
    assert ours == expected
    assert '{"name": "get_weather", "arguments": {"city": "Oslo"}}' in ours
