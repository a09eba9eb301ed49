"""``ftwiz eval`` scores only samples training could have seen whole, as the run's ``overlength`` says.

A run's ``test.jsonl`` prepared before the held-out splits were held to ``cutoff_len`` (or a ``--data``
file) may hold records longer than ``cutoff_len``; eval scored them cut at ``cutoff_len`` without a word.
Oracle: transformers' ``apply_chat_template`` token counts of the records in the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.evaluate.cutoff import hold_to_cutoff
from ftwiz.core.evaluate.samples import load_samples
from test_eval_rundir import eval_run, eval_run_template  # noqa: F401 - fixtures

CUTOFF = 64


@pytest.fixture(scope="module")
def engine_and_renderer(tiny_qwen2: Path):
    import transformers
    from ftwiz.core.evaluate.backends import HFEngine
    from ftwiz.core.evaluate.prompts import renderer_for_tokenizer

    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen2)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_qwen2)
    return HFEngine(model=model, tokenizer=tok, path=str(tiny_qwen2), kind="hf"), renderer_for_tokenizer(tok), tok


def _file(tmp_path: Path) -> tuple[Path, list[dict]]:
    long = "a very long answer about many things and more " * 12
    rows = [{"messages": [{"role": "user", "content": f"question {i}"},
                          {"role": "assistant", "content": (long if i % 3 == 0 else "short") + f" {i}"}]}
            for i in range(9)]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def test_samples_longer_than_cutoff_are_not_scored_when_training_drops_them(engine_and_renderer,
                                                                             tmp_path: Path) -> None:
    engine, renderer, tok = engine_and_renderer
    path, rows = _file(tmp_path)
    too_long = {i for i, r in enumerate(rows)
                if len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) > CUTOFF}
    assert too_long == {0, 3, 6}
    samples = load_samples(path)
    kept, warning = hold_to_cutoff(samples, engine, renderer, cutoff=CUTOFF, overlength="drop")
    assert [s.reference for s in kept] == [rows[i]["messages"][1]["content"] for i in range(9) if i not in too_long]
    assert warning and "3 of 9 samples" in warning and f"cutoff_len {CUTOFF}" in warning and "not scored" in warning

    same, said = hold_to_cutoff(samples, engine, renderer, cutoff=CUTOFF, overlength="truncate")
    assert same == samples and said and "3 of 9 samples" in said and f"first {CUTOFF} tokens" in said
    assert hold_to_cutoff(samples, engine, renderer, cutoff=CUTOFF, overlength=None) == (samples, None)  # no run
    with pytest.raises(FtwizError, match="every one of the 3 samples"):
        hold_to_cutoff([samples[i] for i in sorted(too_long)], engine, renderer, cutoff=CUTOFF, overlength="drop")


def test_eval_of_a_run_leaves_out_test_records_training_never_saw_whole(eval_run: Path) -> None:  # noqa: F811
    """A run whose test.jsonl (prepared by an older ftwiz) holds a record longer than its cutoff_len."""
    import transformers
    from ftwiz.core.evaluate.runner import evaluate
    from ftwiz.core.recipe import load_recipe

    recipe = load_recipe(eval_run / "recipe.yaml")
    assert recipe.overlength == "drop"
    test = eval_run / "data" / "test.jsonl"
    rows = [json.loads(line) for line in test.read_text().splitlines()][:3]
    long = {"messages": [{"role": "user", "content": "tell me everything"},
                         {"role": "assistant", "content": "and then more words " * recipe.cutoff_len}]}
    test.write_text("".join(json.dumps(r) + "\n" for r in [*rows, long]), encoding="utf-8")
    tok = transformers.AutoTokenizer.from_pretrained(eval_run / "adapter")
    ids = tok.apply_chat_template(long["messages"], tokenize=True, return_dict=True)["input_ids"]
    assert len(ids) > recipe.cutoff_len  # the oracle
    report = evaluate(eval_run, max_new_tokens=4, forgetting=False, write=False)
    assert report.n_samples == 3 and "tell me everything" not in json.dumps([s.prompt for s in report.samples])
    assert any("1 of 4 samples are longer than cutoff_len" in w for w in report.warnings), report.warnings
