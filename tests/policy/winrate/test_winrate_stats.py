"""Win-rate statistics on hand-made verdicts: order mapping, ties and swaps, per-topic rates, bootstrap
intervals and the length-controlled win rate."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hub_tools.policy.winrate.stats import (
    bootstrap_interval,
    length_controlled,
    order_score,
    speech_score,
    summarize,
    words,
)


def test_an_order_scores_the_policy_by_where_it_was_shown():
    assert [order_score(v, "A") for v in ("A", "B", "tie", None)] == [1.0, 0.0, 0.5, None]
    assert [order_score(v, "B") for v in ("A", "B", "tie", None)] == [0.0, 1.0, 0.5, None]
    with pytest.raises(ValueError, match="verdict 'C'"):
        order_score("C", "A")


@pytest.mark.parametrize(("first", "second", "expected"), [
    (1.0, 1.0, 1.0),      # wins in both orders
    (0.0, 0.0, 0.0),      # loses in both orders
    (0.5, 0.5, 0.5),      # a tie in both orders
    (1.0, 0.0, 0.5),      # order-inconsistent: the judge followed the position, not the content
    (0.0, 1.0, 0.5),
    (1.0, 0.5, 0.5),      # a win in one order, a tie in the other
    (None, 1.0, None),    # a missing order: no verdict, never guessed
    (0.0, None, None),
])
def test_a_speech_scores_by_both_orders(first, second, expected):
    assert speech_score(first, second) == expected


def _summary(scores, topics=None, pw=None, rw=None, **kw):
    """summarize() with the orders derived from the speech scores (1 -> 1/1, 0 -> 0/0, 0.5 -> 1/0)."""
    first = [None if s is None else (1.0 if s >= 0.5 else 0.0) for s in scores]
    second = [None if s is None else (0.0 if s == 0.5 else s) for s in scores]
    n = len(scores)
    return summarize(scores, first, second, topics or ["T"] * n, pw or [10] * n, rw or [10] * n, **kw)


def test_summary_counts_wins_ties_losses_and_excludes_missing_verdicts():
    scores = [1.0, 1.0, 1.0, 0.5, 0.0, None, None]
    out = _summary(scores, samples=0)
    assert (out["n_speeches"], out["n_missing"], out["n"]) == (7, 2, 5)
    assert (out["wins"], out["ties"], out["losses"]) == (3, 1, 1)
    assert out["win_rate"] == pytest.approx(3.5 / 5)
    assert out["ci"] is None and out["lc_ci"] is None  # no resamples asked


def test_swap_consistency_is_the_share_of_speeches_whose_orders_agree():
    first = [1.0, 0.0, 0.5, 1.0, 0.0, None]
    second = [1.0, 0.0, 0.5, 0.0, 1.0, 1.0]
    scores = [speech_score(f, s) for f, s in zip(first, second)]
    out = summarize(scores, first, second, ["T"] * 6, [5] * 6, [5] * 6, samples=0)
    assert out["swap_consistency"] == pytest.approx(3 / 5)  # the missing speech is not counted
    assert out["win_rate"] == pytest.approx((1 + 0 + 0.5 + 0.5 + 0.5) / 5)


def test_per_topic_rates_in_the_given_order_then_alphabetical():
    scores = [1.0, 1.0, 0.0, 0.5, 0.0, 1.0, None]
    topics = ["Youth", "Youth", "Youth", "Alpha", "Zeta", "Zeta", "Gone"]
    out = _summary(scores, topics, samples=0, topic_order=["Zeta", "Youth", "Unused"])
    assert list(out["topics"]) == ["Zeta", "Youth", "Alpha"]  # "Gone" has no judged speech
    assert out["topics"]["Youth"]["win_rate"] == pytest.approx(2 / 3) and out["topics"]["Youth"]["n"] == 3
    assert out["topics"]["Zeta"]["win_rate"] == pytest.approx(0.5)
    assert out["topics"]["Alpha"] == {"n": 1, "win_rate": 0.5, "ci": None}  # one speech: no interval


def test_bootstrap_bounds_contain_the_estimate_are_seeded_and_shrink_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.choice([0.0, 0.5, 1.0], size=40, p=[0.3, 0.2, 0.5])
    large = np.tile(small, 16)  # the same proportions, 16 times the speeches
    widths = []
    for scores in (small, large):
        out = _summary(list(scores), samples=400, seed=3, lc_interval=False)
        low, high = out["ci"]
        assert low <= out["win_rate"] <= high
        assert 0.0 <= low < high <= 1.0
        widths.append(high - low)
        assert _summary(list(scores), samples=400, seed=3, lc_interval=False)["ci"] == out["ci"]  # reproducible
    assert widths[1] < widths[0] / 2  # ~1/sqrt(16) of the width
    other_seed = _summary(list(small), samples=400, seed=4, lc_interval=False)["ci"]
    assert other_seed != _summary(list(small), samples=400, seed=3, lc_interval=False)["ci"]


def test_bootstrap_interval_needs_two_speeches_and_some_resamples():
    def mean(idx):
        return np.zeros(len(idx))

    assert bootstrap_interval(1, mean, samples=100, confidence=0.95, seed=0) is None
    assert bootstrap_interval(5, mean, samples=0, confidence=0.95, seed=0) is None
    assert bootstrap_interval(5, mean, samples=10, confidence=0.95, seed=0) == [0.0, 0.0]


def test_lc_equals_the_raw_rate_when_lengths_are_equal():
    scores = [1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
    raw = np.mean(scores)
    assert length_controlled(scores, [0] * 7) == raw  # exactly: no length to control for
    assert length_controlled(scores, [12] * 7) == raw  # a constant difference cannot be separated from quality
    out = _summary(scores, pw=[40] * 7, rw=[40] * 7, samples=100)
    assert out["lc_win_rate"] == out["win_rate"] and out["lc_ci"] == out["ci"]  # the same resamples
    assert out["length_ratio"] == 1.0


def test_lc_moves_toward_half_when_wins_are_explained_by_length():
    rng = np.random.default_rng(1)
    diff = rng.normal(60, 50, size=300)  # the policy is mostly longer
    p_win = 1 / (1 + np.exp(-diff / 25))  # and wins by length alone: at equal length it is a coin flip
    scores = (rng.random(300) < p_win).astype(float)
    raw, lc = scores.mean(), length_controlled(scores, diff)
    assert raw > 0.75
    assert abs(lc - 0.5) < 0.1 < abs(raw - 0.5)


def test_lc_keeps_a_win_rate_that_length_does_not_explain():
    rng = np.random.default_rng(2)
    diff = rng.normal(0, 40, size=400)
    scores = (rng.random(400) < 0.8).astype(float)  # wins 80% whatever the length
    assert length_controlled(scores, diff) == pytest.approx(scores.mean(), abs=0.03)


def test_lc_with_ties_and_single_outcomes():
    diff = [-20, -5, 0, 5, 20, 40]
    assert length_controlled([0.5] * 6, diff) == 0.5  # one outcome: the raw rate
    assert length_controlled([1.0] * 6, diff) == 1.0
    assert length_controlled([0.0] * 6, diff) == 0.0
    # ties and wins only: a tie is half a loss, so the fit has both classes; wins of the longer answers
    lc = length_controlled([0.5, 0.5, 0.5, 1.0, 1.0, 1.0], diff)
    assert 0.5 < lc < 0.75  # below the raw rate: the wins come with length
    with warnings.catch_warnings():  # a fit that starts at its optimum (every tanh(z) ~ 1) is quiet and right
        warnings.simplefilter("error")
        assert length_controlled([0.5, 1.0, 0.0], [69, 93, 93]) == pytest.approx(0.5, abs=1e-6)


def test_length_ratio_and_words():
    assert words("  one two\nthree  ") == 3 and words("") == 0
    out = _summary([1.0, 0.0, None], pw=[20, 30, 10], rw=[10, 10, 0], samples=0)
    assert out["length_ratio"] == pytest.approx((2 + 3 + 10) / 3)  # every answered speech; empty reference = 1 word
    assert (out["policy_words"], out["reference_words"]) == (20, pytest.approx(20 / 3))
