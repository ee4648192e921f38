"""Reward-model metrics on preference pairs (paper §4.1, Table 1): accuracy, ROC AUC, ECE, Brier, plus
temperature scaling, a length-only baseline and accuracy per topic.

A pair's preference probability is the Bradley–Terry p = σ((r_chosen − r_rejected) / T), T = 1 unless
calibrated. Every test pair is counted in both orders: (chosen, rejected) with label 1 and probability
p, and (rejected, chosen) with label 0 and probability 1 − p. This makes the binary metrics defined
(with the chosen answer always first, ROC AUC would have one class only) and independent of any
shuffling; accuracy is then exactly the share of pairs whose chosen answer scores higher (a tie counts
half). The paper does not say how its AUC was made; this is the order-free choice.

ECE uses `n_bins` equal-width bins of the predicted probability on [0, 1] ([0, 0.1), ..., [0.9, 1.0]
for 10): ECE = Σ_b (n_b / n) |mean label_b − mean probability_b|, the reliability-diagram form
(Naeini et al., 2015). Accuracy, AUC and Brier come from scikit-learn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.special import expit
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score

TEMPERATURE_BOUNDS = (0.01, 100.0)  # search range of the calibration temperature


def preference_probability(margins: Sequence[float], temperature: float = 1.0) -> np.ndarray:
    """σ(margin / T): the probability that the first answer is preferred."""
    return expit(np.asarray(margins, dtype=np.float64) / temperature)


def both_orders(p: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) with every pair in both orders: (p, 1) and (1 − p, 0)."""
    p = np.asarray(p, dtype=np.float64)
    return np.concatenate([p, 1 - p]), np.concatenate([np.ones(len(p)), np.zeros(len(p))])


def reliability_bins(probs: Sequence[float], labels: Sequence[float], n_bins: int = 10) -> list[dict]:
    """Per equal-width bin: its edges, how many predictions fall in it, their mean probability and the
    observed share of positive labels (None for an empty bin)."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(probs, edges[1:-1]), 0, n_bins - 1)  # [lo, hi); 1.0 joins the last bin
    out = []
    for b in range(n_bins):
        inside = index == b
        n = int(inside.sum())
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": n,
                    "confidence": float(probs[inside].mean()) if n else None,
                    "accuracy": float(labels[inside].mean()) if n else None})
    return out


def expected_calibration_error(probs: Sequence[float], labels: Sequence[float], n_bins: int = 10) -> float:
    """Σ_b (n_b / n) |observed positive share_b − mean probability_b| over equal-width bins."""
    n = len(probs)
    if n == 0:
        raise ValueError("expected_calibration_error of no predictions")
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(probs, labels, n_bins) if b["count"]))


def classification_metrics(probs: Sequence[float], labels: Sequence[float], n_bins: int = 10) -> dict:
    """accuracy (threshold 0.5), ROC AUC (None when only one class is present), ECE and Brier."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    single = len(np.unique(labels)) < 2
    return {
        "accuracy": float(accuracy_score(labels, probs > 0.5)),
        "roc_auc": None if single else float(roc_auc_score(labels, probs)),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "brier": float(brier_score_loss(labels, probs, pos_label=1)),
        "n": int(len(probs)),
    }


def preference_metrics(margins: Sequence[float], n_bins: int = 10, temperature: float = 1.0) -> dict:
    """The Table 1 metrics of reward margins r_chosen − r_rejected, on both orders; n_pairs = pairs."""
    metrics = classification_metrics(*both_orders(preference_probability(margins, temperature)), n_bins)
    metrics["n_pairs"] = metrics.pop("n") // 2
    return metrics


def pair_accuracy(margins: Sequence[float]) -> float:
    """Share of pairs whose chosen answer scores higher; a tie counts half."""
    m = np.asarray(margins, dtype=np.float64)
    return float(((m > 0) + 0.5 * (m == 0)).mean())


def fit_temperature(margins: Sequence[float]) -> float:
    """The T minimising the dev pairs' negative log-likelihood −log σ(margin / T) (temperature scaling,
    Guo et al., 2017), searched on log T within TEMPERATURE_BOUNDS. Scaling by T > 0 keeps every
    ranking, so accuracy and AUC do not move; ECE and Brier do."""
    from scipy.optimize import minimize_scalar

    m = np.asarray(margins, dtype=np.float64)
    if len(m) == 0:
        raise ValueError("fit_temperature needs at least one dev pair")
    if not np.any(m):
        return 1.0  # all ties: every T gives the same likelihood

    def nll(log_t: float) -> float:
        return float(np.logaddexp(0.0, -m / np.exp(log_t)).mean())

    lo, hi = np.log(TEMPERATURE_BOUNDS)
    return float(np.exp(minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6}).x))


def length_baseline(chosen_chars: Sequence[int], rejected_chars: Sequence[int], margins: Sequence[float]) -> dict:
    """How far "the longer answer wins" gets, and the reward model where length points the wrong way.

    accuracy: share of pairs whose chosen answer is longer (a tie counts half); roc_auc: of the length
    difference on both orders; rm_accuracy_chosen_shorter: the reward model's accuracy on the pairs
    whose chosen answer is the shorter one."""
    diff = np.asarray(chosen_chars, dtype=np.float64) - np.asarray(rejected_chars, dtype=np.float64)
    scores, labels = np.concatenate([diff, -diff]), np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
    shorter = diff < 0
    m = np.asarray(margins, dtype=np.float64)
    return {
        "accuracy": pair_accuracy(diff),
        "roc_auc": float(roc_auc_score(labels, scores)) if len(diff) else None,
        "n_chosen_shorter": int(shorter.sum()),
        "rm_accuracy_chosen_shorter": pair_accuracy(m[shorter]) if shorter.any() else None,
    }


def accuracy_by_group(margins: Sequence[float], groups: Sequence[str | None], missing: str = "Unlabelled") -> dict[str, dict]:
    """Pair accuracy and count per group (e.g. coarse topic), groups sorted by name."""
    by: dict[str, list[float]] = defaultdict(list)
    for m, g in zip(margins, groups):
        by[g or missing].append(m)
    return {g: {"accuracy": pair_accuracy(v), "n": len(v)} for g, v in sorted(by.items())}
