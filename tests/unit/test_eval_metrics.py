"""Metric functions against values worked out by hand on fixed strings."""

from __future__ import annotations

import math

import pytest
from ftwiz.core.evaluate import metrics


def test_rouge_l_is_lcs_f1_ignoring_case_and_punctuation() -> None:
    # LCS of "the cat on mat" in "the cat sat on the mat" is 4 words: P = 4/4, R = 4/6, F1 = 0.8.
    assert metrics.rouge_l(["the cat on mat"], ["the cat sat on the mat"]) == pytest.approx(0.8)
    assert metrics.rouge_l(["The cat, on mat!"], ["the cat sat on the mat"]) == pytest.approx(0.8)
    # The mean over pairs: (1.0 + 0.0) / 2.
    assert metrics.rouge_l(["same words", "nothing shared"], ["same words", "other text"]) == pytest.approx(0.5)


def test_bleu_matches_hand_computed_ngram_precisions() -> None:
    # Precisions 5/6, 3/5, 2/4, 1/3, equal lengths (no brevity penalty): 100 * geometric mean.
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert metrics.bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(expected, abs=1e-6)
    # All precisions 1, hypothesis 5 words for a 6-word reference: brevity penalty exp(1 - 6/5).
    assert metrics.bleu(["the cat sat on the"], ["the cat sat on the mat"]) == pytest.approx(
        100 * math.exp(1 - 6 / 5), abs=1e-6)
    assert metrics.bleu(["a b c d"], ["a b c d"]) == pytest.approx(100.0)


def test_exact_match_collapses_whitespace_but_keeps_case() -> None:
    preds = ["Paris", "  Paris \n", "paris", "Paris, France"]
    assert metrics.exact_match(preds, ["Paris"] * 4) == pytest.approx(2 / 4)


def test_json_validity_counts_objects_and_arrays_including_fenced() -> None:
    preds = ['{"a": 1}', "```json\n[1, 2]\n```", "42", "not json", '{"a": ']
    assert metrics.json_validity(preds) == pytest.approx(2 / 5)
    assert metrics.expects_json(['{"name": "x"}', "[1]"]) is True
    assert metrics.expects_json(['{"name": "x"}', "plain words"]) is False


def test_generation_metrics_reports_json_validity_only_for_json_tasks() -> None:
    plain = metrics.generation_metrics(["hello there"], ["hello there"])
    assert set(plain) == {"rouge_l", "bleu", "exact_match"}
    assert plain["exact_match"] == 1.0 and plain["rouge_l"] == 1.0
    js = metrics.generation_metrics(['{"k": 1}', "oops"], ['{"k": 1}', '{"k": 2}'])
    assert js["json_validity"] == pytest.approx(0.5)
    assert js["exact_match"] == pytest.approx(0.5)


def test_perplexity_is_exp_of_mean_loss() -> None:
    assert metrics.perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert metrics.perplexity(0.0) == 1.0
    assert metrics.perplexity(1e6) == math.inf


def test_mismatched_lengths_are_a_bug_not_a_score() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        metrics.rouge_l(["a", "b"], ["a"])
