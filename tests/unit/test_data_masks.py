"""Loss masks on the full render, the mask self-check, templates that refuse records, and the preview.

The Qwen3 case is the one from the issue: its template drops ``<think>`` from earlier assistant turns, so
the rendering up to turn 1 is not a prefix of the whole conversation and prefix-based spans ran on into
``<|im_start|>user\\nWhere``. Oracles: ``tokenizer.apply_chat_template`` for the text, and hand-read strings
of what Qwen3's published template renders for each turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_family_tokenizers import TOKENIZERS, load
from ftwiz.core.cli import main as cli_main
from ftwiz.core.data import check_dataset, prepare_for_training
from ftwiz.core.data.mask_check import learned_runs
from ftwiz.core.data.render import TemplateRefused, render
from ftwiz.core.data.template import render_with_spans, tokenize_with_labels, verify_masks
from ftwiz.core.errors import FtwizError
from ftwiz.core.recipe import parse_recipe

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
FRUIT = [{"role": "user", "content": "Name a fruit."},
         {"role": "assistant", "content": "<think>\nThe user wants a fruit.\n</think>\n\nApple."},
         {"role": "user", "content": "Where does it grow?"},
         {"role": "assistant", "content": "In orchards."}]


@pytest.fixture(scope="module")
def qwen3(shared_dir: Path):
    return load("qwen3")


def _runs(tok, text: str, spans: list[tuple[int, int]]) -> tuple[dict, list[str]]:
    row = {k: v[0] for k, v in tokenize_with_labels(tok, [text], [spans]).items()}
    return row, learned_runs(tok, row["input_ids"], row["labels"])


def _prefix_spans(tok, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """How spans were computed before: renders of prefixes (start: with the generation prompt; end: up to
    the turn), which assumes every prefix render is a prefix of the full text."""
    full = render(tok, tok.chat_template, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            start = len(render(tok, tok.chat_template, messages[:i], generation_prompt=True))
            end = len(full) if i == len(messages) - 1 else len(render(tok, tok.chat_template, messages[: i + 1]))
            spans.append((start, end))
    return full, spans


def test_qwen3_masks_come_from_the_full_render(qwen3) -> None:
    text, spans = render_with_spans(qwen3, qwen3.chat_template, FRUIT)
    assert text == qwen3.apply_chat_template(FRUIT, tokenize=False)
    _row, runs = _runs(qwen3, text, spans)
    # turn 1 is rendered without its reasoning (an earlier turn); turn 2 with the (empty) think block the
    # model produces when thinking is on, as LLaMA-Factory learns it
    assert runs == ["Apple.<|im_end|>\n", "<think>\n\n</think>\n\nIn orchards.<|im_end|>\n"]


def test_qwen3_without_thinking_keeps_the_empty_think_block_in_the_prompt(qwen3) -> None:
    text, spans = render_with_spans(qwen3, qwen3.chat_template, FRUIT, template_kwargs={"enable_thinking": False})
    assert text == qwen3.apply_chat_template(FRUIT, tokenize=False, enable_thinking=False)
    _row, runs = _runs(qwen3, text, spans)
    assert runs == ["Apple.<|im_end|>\n", "In orchards.<|im_end|>\n"]


def test_self_check_fails_on_prefix_spans_naming_the_record_and_passes_the_full_render(qwen3) -> None:
    text, spans = _prefix_spans(qwen3, FRUIT)
    row, runs = _runs(qwen3, text, spans)
    assert runs[0].startswith("Apple.<|im_end|>\n<|im_start|>user\nWhere")  # the bug as users met it
    with pytest.raises(FtwizError, match=r"chat\.jsonl, line 7: .*Where does it grow"):
        verify_masks(qwen3, [row], [FRUIT], mask_history=False, train_on_prompt=False,
                     template=qwen3.chat_template, where=["chat.jsonl, line 7"])
    good, _runs_ = _runs(qwen3, *render_with_spans(qwen3, qwen3.chat_template, FRUIT))
    verify_masks(qwen3, [good], [FRUIT], mask_history=False, train_on_prompt=False, template=qwen3.chat_template)


def test_self_check_accepts_a_template_that_reformats_content_around_think(qwen3) -> None:
    """A template that trims the reasoning and puts the answer on the think block's line still masks right."""
    template = ("{%- for m in messages -%}"
                "{%- if m.role == 'assistant' -%}"
                "{%- set parts = m.content.split('</think>') -%}"
                "{{- '<|im_start|>assistant\\n' -}}"
                "{%- if parts | length > 1 -%}{{- '<think> ' + parts[0].replace('<think>', '').strip() + ' </think> '"
                " -}}{%- endif -%}"
                "{{- parts[-1].strip() + '<|im_end|>\\n' -}}"
                "{%- else -%}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' -}}{%- endif -%}"
                "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")
    text, spans = render_with_spans(qwen3, template, FRUIT)
    row, runs = _runs(qwen3, text, spans)
    assert runs == ["<think> The user wants a fruit. </think> Apple.<|im_end|>\n", "In orchards.<|im_end|>\n"]
    verify_masks(qwen3, [row], [FRUIT], mask_history=False, train_on_prompt=False, template=template)


def test_prepare_learns_thinking_answers_and_honours_the_recipes_enable_thinking(qwen3) -> None:
    base = {"model_name_or_path": "x", "dataset": [str(CORPUS / "qwen3_thinking.jsonl")], "val_size": 0.0,
            "test_size": 0.0}
    prepared = prepare_for_training(parse_recipe(base), qwen3)
    row = prepared.train[0]
    assert learned_runs(qwen3, row["input_ids"], row["labels"]) == [
        "Apple.<|im_end|>\n", "<think>\nApples grow on trees.\n</think>\n\nIn orchards.<|im_end|>\n"]
    quiet = prepare_for_training(parse_recipe({**base, "enable_thinking": False}), qwen3)
    messages = prepared.splits["train"][0]["messages"]
    # thinking off: answers are trained without their thoughts, after the served empty think block
    answers = [dict(m, content=m["content"].split("</think>")[-1].lstrip("\n")) for m in messages]
    expected = qwen3.apply_chat_template(answers, tokenize=True, enable_thinking=False, return_dict=False)
    assert quiet.train[0]["input_ids"] == expected
    assert learned_runs(qwen3, expected, quiet.train[0]["labels"]) == ["Apple.<|im_end|>\n", "In orchards.<|im_end|>\n"]


def test_gemma_system_text_goes_into_the_first_user_turn(shared_dir: Path) -> None:
    gemma = load("gemma")
    messages = [{"role": "system", "content": "You are a bike-shop assistant."},
                {"role": "user", "content": "Do you sell lights?"}, {"role": "assistant", "content": "We do."}]
    with pytest.raises(Exception, match="System role not supported"):
        gemma.apply_chat_template(messages, tokenize=False)
    text, spans = render_with_spans(gemma, gemma.chat_template, messages)
    folded = [{"role": "user", "content": "You are a bike-shop assistant.\n\nDo you sell lights?"}, messages[2]]
    assert text == gemma.apply_chat_template(folded, tokenize=False)
    assert _runs(gemma, text, spans)[1] == ["We do.<end_of_turn>\n"]


def test_a_template_refusal_names_the_record_and_is_no_traceback(shared_dir: Path, tmp_path: Path) -> None:
    """Gemma's alternation check (a tool turn): the record is rejected with its line and the template's own
    words, and ``data check --model`` and ``prepare`` say the same."""
    gemma = load("gemma")
    path = tmp_path / "chat.jsonl"
    call = {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "What is 2 plus 3?"},
                                             {"role": "assistant", "content": "", "tool_calls": [call]},
                                             {"role": "tool", "content": "5"},
                                             {"role": "assistant", "content": "It is 5."}]}) + "\n"
                    + json.dumps({"messages": [{"role": "user", "content": "Colour of the sky?"},
                                               {"role": "assistant", "content": "Blue."}]}) + "\n", encoding="utf-8")
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": [str(path)], "val_size": 0.0, "test_size": 0.0})
    report = check_dataset(str(path), tokenizer=gemma, recipe=recipe)
    assert report.kept == 1 and [(r.line, r.reason) for r in report.rejects] == [(1, "template_refused")]
    assert "Conversation roles must alternate" in report.rejects[0].message
    prepared = prepare_for_training(recipe, gemma)
    assert [(r.line, r.message) for r in prepared.rejects] == [(1, report.rejects[0].message)]
    assert len(prepared.train) == 1 and prepared.stats["rejected"] == report.rejected  # the counts agree too
    with pytest.raises(TemplateRefused):
        render_with_spans(gemma, gemma.chat_template, json.loads(path.read_text().splitlines()[0])["messages"])


def test_a_template_without_tool_support_is_refused_by_name(shared_dir: Path) -> None:
    phi3 = load("phi3")
    record = json.loads((CORPUS / "openai_tools.jsonl").read_text(encoding="utf-8").splitlines()[0])
    report = check_dataset(str(CORPUS / "openai_tools.jsonl"), tokenizer=phi3,
                           recipe=parse_recipe({"model_name_or_path": "x", "dataset": ["x"]}))
    assert report.kept == 0 and {r.reason for r in report.rejects} == {"tools_not_supported"}
    assert "'add'" in report.rejects[0].message and report.rejects[0].line == 1
    assert record["tools"]


def test_preview_json_prints_text_tokens_and_labels(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(TOKENIZERS / "Qwen2-1.5B-Instruct-Boundless")
    path = CORPUS / "csv_multiline.csv"
    assert cli_main(["data", "preview", str(path), "--model", model, "--json", "--index", "0"]) == 0
    shown = json.loads(capsys.readouterr().out)
    tok = load("qwen2")
    assert shown["input_ids"] == tok(shown["text"], add_special_tokens=False)["input_ids"]
    assert shown["tokens"] == tok.convert_ids_to_tokens(shown["input_ids"])
    assert len(shown["labels"]) == len(shown["tokens"])
    learned = [t for t, lab in zip(shown["input_ids"], shown["labels"], strict=True) if lab != -100]
    assert all(lab in (-100, t) for t, lab in zip(shown["input_ids"], shown["labels"], strict=True))
    assert tok.decode(learned) in ("1. red\n2. yellow\n3. green<|im_end|>\n", 'It says "Stop".<|im_end|>\n')
    assert "Qwen2-1.5B-Instruct-Boundless" in shown["tokenizer"] and "csv_multiline.csv, line" in shown["record"]


def test_chinese_samples_show_whole_characters(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftwiz.core.data.preview import learned_segments, sample_view, token_segments

    tok = load("qwen2")
    path = CORPUS / "alpaca_chinese.json"
    assert cli_main(["data", "preview", str(path), "--model", str(TOKENIZERS / "Qwen2-1.5B-Instruct-Boundless")]) == 0
    out = capsys.readouterr().out
    assert "北京是中国的首都，有三千多年的历史。" in out and "\ufffd" not in out
    assert "Qwen2-1.5B-Instruct-Boundless" in out  # which tokenizer measured the lengths
    recipe = parse_recipe({"model_name_or_path": "x", "dataset": ["x"]})
    record = check_dataset(str(path)).samples[0]
    view = sample_view(tok, tok.chat_template, record, recipe, record="alpaca_chinese.json, record 0")
    segments = learned_segments(tok, view)
    assert "".join(t for t, _ in segments) == view.text and "\ufffd" not in view.text
    assert "".join(t for t, learned in segments if learned) == "北京是中国的首都，有三千多年的历史。<|im_end|>\n"
    # the slow-tokenizer path too
    assert "".join(t for t, _ in token_segments(tok, view.input_ids, view.labels)) == view.text


def test_a_sentencepiece_word_with_its_leading_space_is_learned_whole(shared_dir: Path) -> None:
    """"[/INST] Paris.": SentencePiece's one token "▁Paris" starts on the space before the answer; it is the
    answer's first word, so it is learned (it was dropped, and the model learned only ".</s>")."""
    from ftwiz.core.chat_templates import NAMED_TEMPLATES

    tok = load("tinyllama")
    conversation = [{"role": "user", "content": "What is the capital of France?"},
                    {"role": "assistant", "content": "Paris."}]
    text, spans = render_with_spans(tok, NAMED_TEMPLATES["mistral"], conversation)
    assert text.endswith("[/INST] Paris.</s>")
    row, runs = _runs(tok, text, spans)
    assert runs == ["Paris.</s>"] and tok.convert_ids_to_tokens(row["input_ids"])[-3] == "▁Paris"
