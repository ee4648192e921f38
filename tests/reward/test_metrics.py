"""Reward-model metrics against hand-computed values: perfect, inverted and constant scores, a single
class, ECE bins, temperature scaling, the length baseline and per-topic accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from hub_tools.reward.metrics import (
    accuracy_by_group,
    both_orders,
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    length_baseline,
    pair_accuracy,
    preference_metrics,
    reliability_bins,
)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_perfect_scores():
    margins = [2.0, 1.0, 3.0]
    m = preference_metrics(margins, n_bins=10)
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0 and m["n_pairs"] == 3
    # both orders: (p, 1) and (1 - p, 0) each miss by 1 - p, so Brier is the mean of (1 - p)^2 ...
    assert m["brier"] == pytest.approx(sum((1 - sigmoid(x)) ** 2 for x in margins) / 3)
    # ... and with every prediction alone in its bin, ECE is the mean of |label - p| = 1 - p
    assert m["ece"] == pytest.approx(sum(1 - sigmoid(x) for x in margins) / 3)


def test_inverted_scores():
    m = preference_metrics([-2.0, -1.0, -3.0])
    assert m["accuracy"] == 0.0 and m["roc_auc"] == 0.0
    assert m["brier"] == pytest.approx(sum((1 - sigmoid(x)) ** 2 for x in (-2, -1, -3)) / 3)


def test_constant_scores_are_a_coin_flip():
    m = preference_metrics([0.0, 0.0, 0.0, 0.0])
    assert m["accuracy"] == 0.5 and m["roc_auc"] == 0.5  # a tie is half right
    assert m["brier"] == pytest.approx(0.25)
    assert m["ece"] == pytest.approx(0.0)  # p = 0.5 and half the labels are 1: calibrated, uninformative


def test_single_class_has_no_auc():
    m = classification_metrics([0.9, 0.8, 0.3], [1, 1, 1])
    assert m["roc_auc"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.49) / 3)
    assert m["ece"] == pytest.approx((0.1 + 0.2 + 0.7) / 3)  # three bins, one prediction each


def test_ece_pools_a_bin():
    # 0.62 and 0.68 share the bin [0.6, 0.7): mean probability 0.65, observed share 0.5
    assert expected_calibration_error([0.62, 0.68], [1, 0], n_bins=10) == pytest.approx(0.15)
    # with 2 bins they still share one: [0.5, 1.0]
    assert expected_calibration_error([0.62, 0.68, 0.1], [1, 0, 0], n_bins=2) == pytest.approx((2 * 0.15 + 0.1) / 3)


def test_reliability_bins_match_scikit_learn():
    rng = np.random.default_rng(0)
    probs = rng.uniform(size=500)
    labels = (rng.uniform(size=500) < probs).astype(int)
    bins = reliability_bins(probs, labels, n_bins=10)
    assert sum(b["count"] for b in bins) == 500 and [b["lo"] for b in bins][:2] == [0.0, 0.1]
    prob_true, prob_pred = calibration_curve(labels, probs, n_bins=10, strategy="uniform")
    filled = [b for b in bins if b["count"]]
    assert [b["accuracy"] for b in filled] == pytest.approx(prob_true.tolist())
    assert [b["confidence"] for b in filled] == pytest.approx(prob_pred.tolist())
    edge = reliability_bins([1.0, 0.0], [1, 0], n_bins=4)
    assert edge[-1]["count"] == 1 and edge[0]["count"] == 1  # 1.0 joins the last bin, 0.0 the first


def test_both_orders_doubles_the_pairs():
    probs, labels = both_orders([0.9, 0.2])
    assert probs.tolist() == pytest.approx([0.9, 0.2, 0.1, 0.8]) and labels.tolist() == [1, 1, 0, 0]


def test_temperature_recovers_the_true_one_and_keeps_the_ranking():
    rng = np.random.default_rng(1)
    true_t = 2.5
    logits = rng.normal(0, 3, size=20000)
    chosen_first = rng.uniform(size=20000) < 1 / (1 + np.exp(-logits / true_t))
    margins = np.where(chosen_first, logits, -logits)  # r_chosen - r_rejected as a model with T = 2.5 sees it
    t = fit_temperature(margins)
    assert t == pytest.approx(true_t, rel=0.06)
    raw, scaled = preference_metrics(margins), preference_metrics(margins, temperature=t)
    assert scaled["accuracy"] == raw["accuracy"] and scaled["roc_auc"] == pytest.approx(raw["roc_auc"])
    assert scaled["ece"] < raw["ece"] and scaled["brier"] < raw["brier"]
    assert fit_temperature([0.0, 0.0]) == 1.0
    with pytest.raises(ValueError):
        fit_temperature([])


def test_length_baseline_by_hand():
    out = length_baseline(chosen_chars=[10, 5, 7], rejected_chars=[5, 10, 7], margins=[1.0, 2.0, -1.0])
    assert out["accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)  # longer wins, loses, ties
    assert out["roc_auc"] == pytest.approx(4.5 / 9)  # scores (5, -5, 0) vs (-5, 5, 0)
    assert out["n_chosen_shorter"] == 1 and out["rm_accuracy_chosen_shorter"] == 1.0
    none = length_baseline([9], [3], [1.0])
    assert none["n_chosen_shorter"] == 0 and none["rm_accuracy_chosen_shorter"] is None and none["accuracy"] == 1.0


def test_accuracy_per_group_and_ties():
    assert pair_accuracy([1.0, -1.0, 0.0, 2.0]) == pytest.approx(2.5 / 4)
    groups = accuracy_by_group([1.0, -1.0, 0.0, 2.0], ["A", "A", None, "B"])
    assert groups == {"A": {"accuracy": 0.5, "n": 2}, "B": {"accuracy": 1.0, "n": 1},
                      "Unlabelled": {"accuracy": 0.5, "n": 1}}
