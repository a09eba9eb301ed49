"""data preview on preference pairs: chosen and rejected, each with the answer tokens the trainers score.

Oracle: ``tokenizer.apply_chat_template`` (prompt+answer; prompt alone with the generation prompt), which
is what TRL's DPO/ORPO/KTO trainers tokenize.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
from ftwiz.core.cli import main as cli_main

PAIRS = [{"prompt": f"What is {n} plus {n}?", "chosen": f"Arr, {n} and {n} be {2 * n}, matey!",
          "rejected": "I do not know, sorry."} for n in range(1, 13)]


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    return path


def test_preview_json_shows_chosen_and_rejected_with_their_scored_tokens(
        tiny_qwen2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["data", "preview", str(_file(tmp_path)), "--model", str(tiny_qwen2), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    assert "pairs.jsonl, line" in shown["record"]
    texts = {}
    for which in ("chosen", "rejected"):
        side = shown[which]
        assert side["labels"] != [] and len(side["labels"]) == len(side["input_ids"]) == len(side["tokens"])
        learned = [t for t, lab in zip(side["input_ids"], side["labels"], strict=True) if lab != -100]
        texts[which] = tok.decode(learned)
        # the same prompt was rendered for both; the oracle is transformers' own chat template
        prompt = [{"role": "user", "content": side["text"].split("<|im_start|>user\n")[1].split("<|im_end|>")[0]}]
        answer = tok.decode(learned).removesuffix("\n").removesuffix("<|im_end|>")
        full = tok.apply_chat_template(prompt + [{"role": "assistant", "content": answer}], tokenize=False)
        head = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        assert side["text"] == full
        assert side["input_ids"] == tok(full, add_special_tokens=False)["input_ids"]
        assert learned == tok(full, add_special_tokens=False)["input_ids"][len(tok(head)["input_ids"]):]
    row = next(r for r in PAIRS if r["chosen"] + "<|im_end|>" in texts["chosen"])
    assert texts["rejected"].startswith(row["rejected"] + "<|im_end|>")
    assert shown["chosen"]["learned_tokens"] < shown["chosen"]["total_tokens"]  # the prompt is not scored


def test_preview_prints_both_answers_and_what_training_does(tiny_qwen2: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["data", "preview", str(_file(tmp_path)), "--model", str(tiny_qwen2)]) == 0
    out = capsys.readouterr().out
    assert "chosen (" in out and "made more likely" in out
    assert "rejected (" in out and "made less likely" in out
    assert "I do not know, sorry." in out and "matey!" in out
