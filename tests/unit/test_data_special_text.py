"""Special-token text in the data ('</s>' at the end of scraped ShareGPT answers, '<|im_end|>' in a question) is
said before training: the tokenizer reads it as the control token, so the model learns to stop mid-answer.
Oracle: the model's own tokenizer, which turns that text into the special token's id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main


def _chats(path: Path, answers: list[str], question: str = "Hi") -> Path:
    path.write_text("".join(json.dumps({"conversations": [{"from": "human", "value": question},
                                                          {"from": "gpt", "value": a}]}) + "\n" for a in answers),
                    encoding="utf-8")
    return path


def test_data_check_names_where_a_special_token_text_is_and_how_often(tmp_path: Path, tiny_qwen2: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoTokenizer

    answers = ["Fine, thanks.", "Sure.<|im_end|>", "Plain <im_end> text.", "Bye<|im_end|>"]
    data = _chats(tmp_path / "chats.jsonl", answers)
    tok = AutoTokenizer.from_pretrained(tiny_qwen2)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    learned_as_token = [end in tok(a, add_special_tokens=False)["input_ids"] for a in answers]
    assert learned_as_token == [False, True, False, True]  # the oracle: which answers train the control token

    assert cli_main(["data", "check", str(data), "--model", str(tiny_qwen2)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{data}, line 2, field conversations[1].value (and 1 more record): '<|im_end|>' is the text of a " \
           "special token" in out
    assert "<im_end>" not in out  # not a token of this tokenizer: trained as the text it is

    assert cli_main(["data", "check", str(data), "--model", str(tiny_qwen2), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)["special_token_text"]
    assert len(said) == 1 and "'<|im_end|>'" in said[0]


def test_training_data_step_says_it_too_and_clean_data_says_nothing(tmp_path: Path, tiny_qwen2: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dirty = _chats(tmp_path / "dirty.jsonl", ["Hello.", "Hi."], question="What is <|endoftext|>?")
    assert cli_main(["data", "preview", str(dirty), "--model", str(tiny_qwen2)]) == 0
    captured = capsys.readouterr()
    said = " ".join((captured.err + captured.out).split())
    assert "line 1, field conversations[0].value (and 1 more record): '<|endoftext|>'" in said

    clean = _chats(tmp_path / "clean.jsonl", ["Hello.", "Hi."])
    assert cli_main(["data", "preview", str(clean), "--model", str(tiny_qwen2)]) == 0
    captured = capsys.readouterr()
    assert "special token" not in captured.out + captured.err


def test_the_texts_found_are_the_special_tokens_the_tokenizer_makes_of_the_text(tiny_qwen2: Path) -> None:
    """Overlapping texts ('<|im' inside '<|im_end|>'), neighbours and near misses, found as the tokenizer splits
    them: the longest text at the leftmost place."""
    from ftwiz.core.data.special_text import _TokenFinder, special_token_texts
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2)
    tok.add_special_tokens({"additional_special_tokens": ["<|im", "[X]", "[X][Y]"]})
    text = "a<|im_end|>b<|im c<|im_end|<|im_start|>[X][Y][X]<|endoftext|x <|endoftext|>"
    specials = {i for i, added in tok.added_tokens_decoder.items() if added.special}  # '<|im_start|>' too
    oracle = [tok.convert_ids_to_tokens(i) for i in tok(text, add_special_tokens=False)["input_ids"] if i in specials]
    assert _TokenFinder(special_token_texts(tok)).find(text) == oracle
    assert len(oracle) == 7  # the case is not trivial: overlaps, neighbours, a near miss
