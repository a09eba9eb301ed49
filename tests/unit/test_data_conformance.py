"""Conformance corpus: every record shape users bring, through seven real template families.

For each file in tests/fixtures/conformance/ (one record shape each) and each template family, every record
either renders to exactly ``tokenizer.apply_chat_template(messages, tools=...)`` and learns exactly its
assistant turns (tool calls included) with their end-of-turn text, or is refused with its file, line and a
reason; which records a family refuses is stated here (templates without tool support, Mistral's 9-character
tool-call ids, Gemma's strict alternation), and ``data check --model`` refuses the same ones.

The oracle for what a turn learns is transformers alone: the text ``apply_chat_template`` adds when the
conversation is extended by that assistant turn (``Q[len(P):]`` for P = the conversation before it with the
generation prompt, Q = with it), as the model would produce it after the prompt. Two documented template
behaviours are applied to that oracle: Qwen3 renders a turn without its ``<think>`` block when a user
message follows it, or when another message follows and it has no reasoning, and Phi-3 closes the whole conversation with ``<|endoftext|>``, which only the last
turn learns.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chat_family_tokenizers import FAMILIES, load
from ftwiz.core.data import check_dataset
from ftwiz.core.data.mask_check import learned_runs
from ftwiz.core.data.render import TemplateRefused, render_conversation
from ftwiz.core.data.template import render_with_spans, tokenize_with_labels, verify_masks
from ftwiz.core.recipe import parse_recipe

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
TOOL_FILES = ("openai_tools.jsonl", "sharegpt_glaive_tools.json")
# (family, file) -> reason for every record of that file; anything not listed must render and learn.
REFUSED = {
    **{(family, name): "tools_not_supported" for family in ("qwen2", "phi3", "tinyllama", "llama3")
       for name in TOOL_FILES},
    ("gemma", "openai_tools.jsonl"): "template_refused",  # tool turns break Gemma's strict alternation
    ("gemma", "sharegpt_glaive_tools.json"): "template_refused",
    ("mistral", "sharegpt_glaive_tools.json"): "template_refused",  # glaive calls carry no 9-character id
}
LOSSLESS_DECODE = ("qwen2", "qwen3", "llama3", "gemma")  # byte-level BPE: decoding gives the text back exactly
TEMPLATE_WORDS = {"gemma": ("System role not supported", "Conversation roles must alternate"),
                  "mistral": ("Tool call must have an id of 9 characters",)}


def _squash(text: str) -> str:
    return "".join(text.split())


def _records(path: Path) -> list[dict]:
    report = check_dataset(str(path))
    assert report.kept == report.read > 0, report.rejects  # the readers keep every record of the corpus
    return report.samples


def _expected_turns(tok, family: str, messages: list[dict], tools: list | None, full: str) -> list[str]:
    """What each assistant turn should learn, from apply_chat_template alone (see the module docstring)."""
    expected = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tok.apply_chat_template(messages[:i], tools=tools, tokenize=False, add_generation_prompt=True)
        extended = tok.apply_chat_template(messages[: i + 1], tools=tools, tokenize=False)
        assert extended.startswith(prompt), "the oracle needs the prompt to be a prefix of its extension"
        turn = extended[len(prompt):]
        later_user = any(m["role"] == "user" for m in messages[i + 1:])
        content = message["content"]
        reasoning = "</think>" in content and content.split("</think>")[0].split("<think>")[-1].strip()
        if family == "qwen3" and (later_user or (i < len(messages) - 1 and not reasoning)):
            turn = re.sub(r"^<think>.*?</think>\s*", "", turn, flags=re.S)
        if family == "phi3" and i < len(messages) - 1:
            turn = turn.removesuffix(tok.eos_token)
        expected.append(turn)
    return expected


@pytest.mark.parametrize("family", FAMILIES)
def test_corpus_renders_like_apply_chat_template_and_learns_only_the_answers(shared_dir: Path, family: str) -> None:
    tok = load(family)
    checked = 0
    for path in sorted(p for p in CORPUS.iterdir() if not p.name.endswith(".rejects.jsonl")):
        for record in _records(path):
            messages, tools = record["messages"], record.get("tools")
            reason = REFUSED.get((family, path.name))
            if reason:
                with pytest.raises(TemplateRefused) as refused:
                    render_with_spans(tok, tok.chat_template, messages, tools=tools)
                assert refused.value.reason == reason
                if family in TEMPLATE_WORDS:  # the template's own words reach the user
                    assert any(words in refused.value.message for words in TEMPLATE_WORDS[family])
                continue
            rendered, full = render_conversation(tok, tok.chat_template, messages, tools=tools)
            assert full == tok.apply_chat_template(rendered, tools=tools, tokenize=False), path.name
            if rendered is not messages:  # folded: only because the template refuses the record as it is
                with pytest.raises(Exception, match="System role not supported"):
                    tok.apply_chat_template(messages, tools=tools, tokenize=False)
            text, spans = render_with_spans(tok, tok.chat_template, messages, tools=tools)
            assert text == full
            row = tokenize_with_labels(tok, [text], [spans])
            ids, labels = row["input_ids"][0], row["labels"][0]
            assert ids == tok(text, add_special_tokens=False)["input_ids"]
            runs = learned_runs(tok, ids, labels)
            expected = _expected_turns(tok, family, rendered, tools, full)
            if family in LOSSLESS_DECODE:
                assert [r.strip() for r in runs] == [e.strip() for e in expected], (path.name, runs, expected)
            else:  # SentencePiece decoding drops spaces and newlines around pieces (Phi-3's <|end|> eats "\n")
                assert [_squash(r) for r in runs] == [_squash(e) for e in expected], (path.name, runs, expected)
            verify_masks(tok, [{"input_ids": ids, "labels": labels}], [messages], mask_history=False,
                         train_on_prompt=False, template=tok.chat_template, where=[path.name])
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("family", ["gemma", "qwen2", "mistral"])
def test_data_check_with_a_model_agrees_with_prepare_on_every_corpus_file(shared_dir: Path, family: str) -> None:
    """``data check --model`` and ``prepare`` refuse the same records, by file and line, and keep the rest;
    a file whose every record is refused is an error naming the first one, never a traceback."""
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.errors import FtwizError

    tok = load(family)
    for path in sorted(p for p in CORPUS.iterdir() if not p.name.endswith(".rejects.jsonl")):
        recipe = parse_recipe({"model_name_or_path": "x", "dataset": [str(path)], "val_size": 0.0, "test_size": 0.0,
                               "near_dedup_threshold": None, "dedup": False})
        checked = check_dataset(str(path), tokenizer=tok, recipe=recipe)
        refused = {(r.line, r.index, r.reason) for r in checked.rejects}
        if (family, path.name) in REFUSED:
            assert checked.kept == 0 and {reason for *_where, reason in refused} == {REFUSED[(family, path.name)]}
            with pytest.raises(FtwizError, match=f"cannot render any record: .*{path.name}"):
                prepare_for_training(recipe, tok)
            continue
        assert not refused, (path.name, checked.rejects)
        prepared = prepare_for_training(recipe, tok)
        assert len(prepared.train) == checked.kept and not prepared.rejects, path.name
