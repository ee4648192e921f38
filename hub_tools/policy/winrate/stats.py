"""Win-rate statistics on per-speech verdicts, as pure functions of arrays (paper §4.2, Table 2).

A speech is judged twice, the policy's answer shown first (A) and second (B). Each order gives the policy
1 (better), 0 (worse) or 0.5 (tie); the speech scores 1 when both orders say the policy is better, 0 when
both say worse, and 0.5 otherwise (a tie, or an order-inconsistent verdict that follows the position
rather than the content). The win rate is the mean score; speeches with a missing verdict are excluded.
The swap-consistency rate is the share of judged speeches whose two orders agree.

Intervals are percentile bootstraps over speeches with a seeded numpy Generator. Beyond the paper, the
length-controlled (LC) win rate asks what the win rate would be at equal length, as AlpacaEval 2 does:
a logistic model of the verdict on tanh(length difference / its standard deviation) (policy - reference,
in words; tanh keeps a few very long answers from dominating and a one-sided difference from being
extrapolated far), read at zero difference. A tie enters as two half-weight samples, one per class.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

VERDICTS = ("A", "B", "tie")  # what the judge answers: which response is better, or neither


def order_score(verdict: str | None, policy_position: str) -> float | None:
    """The policy's score in one order: 1 if the judge preferred the position it held, 0 the other, 0.5 a tie."""
    if verdict is None:
        return None
    if verdict not in VERDICTS or policy_position not in ("A", "B"):
        raise ValueError(f"verdict {verdict!r} / position {policy_position!r}: expected one of {VERDICTS} / A or B")
    return 0.5 if verdict == "tie" else float(verdict == policy_position)


def speech_score(policy_first: float | None, policy_second: float | None) -> float | None:
    """The speech's score from both orders: their common score when they agree, else 0.5; None when one is missing."""
    if policy_first is None or policy_second is None:
        return None
    return policy_first if policy_first == policy_second else 0.5


def words(text: str) -> int:
    """Length of an answer in words (whitespace-separated), the unit of the length constraint."""
    return len(text.split())


def length_controlled(scores: Sequence[float], length_diff: Sequence[float]) -> float:
    """The win rate at zero length difference: logistic fit of the verdict on tanh(length_diff / std(length_diff)).

    Equal differences (std 0: nothing to separate length from quality) or a single outcome give the raw rate
    exactly."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    s = np.asarray(scores, dtype=float)
    d = np.asarray(length_diff, dtype=float)
    raw = float(s.mean())
    std = float(d.std())
    if std == 0.0 or np.all(s == s[0]):  # no length variation, or one outcome (all wins, losses or ties)
        return raw
    z = np.tanh(np.concatenate([d, d])[:, None] / std)  # bounded, as AlpacaEval 2: no extreme length dominates
    y = np.concatenate([np.ones_like(s), np.zeros_like(s)])  # each speech: weight s as a win, 1 - s as a loss
    w = np.concatenate([s, 1.0 - s])
    keep = w > 0
    # newton-cholesky: ~2 ms a fit (lbfgs ~10), for the bootstrap's refits. When Newton starts at the optimum
    # (e.g. every z ~ 1) its line search cannot improve and sklearn finishes with lbfgs: nothing to report.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Line search of Newton solver", ConvergenceWarning)
        model = LogisticRegression(solver="newton-cholesky").fit(z[keep], y[keep], sample_weight=w[keep])
    return float(model.predict_proba(np.zeros((1, 1)))[0, 1])


def bootstrap_interval(n: int, statistic: Callable[[np.ndarray], np.ndarray | float], *, samples: int,
                       confidence: float, seed: int) -> list[float] | None:
    """Percentile interval of `statistic(indices)` over `samples` resamples of n speeches; None when n < 2
    or samples is 0. `statistic` gets a (samples, n) index matrix when it is vectorised (the mean)."""
    if n < 2 or samples <= 0:
        return None
    idx = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    stats = np.asarray(statistic(idx), dtype=float)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return [float(low), float(high)]


def _rate(scores: np.ndarray, *, samples: int, confidence: float, seed: int) -> dict:
    """Mean score, its interval and its count."""
    n = len(scores)
    return {"n": n, "win_rate": float(scores.mean()) if n else None,
            "ci": bootstrap_interval(n, lambda idx: scores[idx].mean(axis=1), samples=samples,
                                     confidence=confidence, seed=seed)}


def summarize(scores: Sequence[float | None], policy_first: Sequence[float | None],
              policy_second: Sequence[float | None], topics: Sequence[str], policy_words: Sequence[int],
              reference_words: Sequence[int], *, samples: int = 1000, confidence: float = 0.95, seed: int = 42,
              topic_order: Sequence[str] = (), lc_interval: bool = True) -> dict:
    """One policy in one setting: overall and per-topic win rates with intervals, counts, swap consistency,
    the LC win rate and the achieved length ratio. Inputs hold one entry per speech (None = missing verdict).
    Topics are listed in `topic_order` first, then any others alphabetically."""
    judged = np.array([s is not None for s in scores], dtype=bool)
    s = np.array([x for x in scores if x is not None], dtype=float)
    first = [f for f, ok in zip(policy_first, judged) if ok]
    second = [g for g, ok in zip(policy_second, judged) if ok]
    pw, rw = np.asarray(policy_words, dtype=float), np.asarray(reference_words, dtype=float)
    diff = (pw - rw)[judged]
    boot = {"samples": samples, "confidence": confidence, "seed": seed}
    out = {
        "n_speeches": len(scores), "n_missing": int((~judged).sum()), **_rate(s, **boot),
        "wins": int((s == 1).sum()), "ties": int((s == 0.5).sum()), "losses": int((s == 0).sum()),
        "swap_consistency": float(np.mean([f == g for f, g in zip(first, second)])) if len(s) else None,
        "lc_win_rate": length_controlled(s, diff) if len(s) else None,
        "lc_ci": bootstrap_interval(len(s), lambda idx: [length_controlled(s[i], diff[i]) for i in idx], **boot)
        if lc_interval else None,
        "length_ratio": float(np.mean(pw / np.maximum(rw, 1))) if len(pw) else None,
        "policy_words": float(pw.mean()) if len(pw) else None,
        "reference_words": float(rw.mean()) if len(rw) else None,
    }
    judged_topics = np.array([t for t, ok in zip(topics, judged) if ok], dtype=object)
    present = set(judged_topics)
    names = [t for t in topic_order if t in present] + sorted(present - set(topic_order))
    out["topics"] = {t: _rate(s[judged_topics == t], **boot) for t in names}
    return out
