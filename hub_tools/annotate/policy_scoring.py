"""Scoring the expert evaluation of a policy: expert win rates with bootstrap intervals, judge–expert agreement
and Cohen's κ, and the absolute ratings per principle (paper §4.2 Human Evaluation, Figures 2 and 3).

An expert's overall preference gives the policy 1 (its answer preferred), 0 (the reference's) or 0.5 (tie);
an item's score is the mean over the experts who answered it, and the win rate is the mean over items, with
a percentile bootstrap over items. The LLM judge's verdict (both orders, from the evaluation) is turned into
the letter the experts saw, and compared with each expert like the pair kit compares raters: percent
agreement and Cohen's κ over the items where both preferred one side (ties and blanks excluded, counted).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..paper.principles import PRINCIPLE_NAMES
from .pair_sheets import QUESTIONS, AnnotationError, _read_rows, compare, read_sheet, sheet_rows

JUDGE = "LLM judge"  # the rater name of the evaluation's judge
ALL = "all"  # every setting together
SETTING_NAMES = {"free": "w/o length constraint", "length_matched": "w/ length constraint", ALL: "both settings"}


def read_policy_key(path) -> dict[str, dict]:
    """policy_key.jsonl -> {item_id: record}; the record's `judge_letter` is the judge's side as the experts saw it."""
    key = {}
    for where, rec in _read_rows(Path(path)):
        try:
            mine, other = rec["policy"], {"A": "B", "B": "A"}[rec["policy"]]
            judge = {"policy": mine, "reference": other, "tie": "tie", None: None}[rec["judge"]]
            key[rec["item_id"]] = {**rec, "judge_letter": judge, "reference_letter": other, "setting": rec["setting"]}
        except (KeyError, TypeError) as e:
            raise AnnotationError(f"{path}: {where}: not a policy key record (bad or missing {e})") from None
    return key


def read_rating_sheet(path) -> tuple[str, dict[str, dict[str, int | None]]]:
    """One filled rating sheet -> (annotator, {item_id: {principle: 1..5 or None}})."""
    path = Path(path)
    annotator, rows = sheet_rows(path, {"item_id", *(f"rating_{p}" for p in PRINCIPLE_NAMES)})
    ratings = {}
    for where, item, rec in rows:
        ratings[item] = {}
        for p in PRINCIPLE_NAMES:
            text = str(rec[f"rating_{p}"] if rec[f"rating_{p}"] is not None else "").strip()
            if text in ("", "nan", "none", "null"):
                ratings[item][p] = None
            elif text.removesuffix(".0") in ("1", "2", "3", "4", "5"):
                ratings[item][p] = int(text.removesuffix(".0"))
            else:
                raise AnnotationError(f"{path}: {where} (item_id {item!r}), column rating_{p}: {rec[f'rating_{p}']!r} "
                                      "is not a rating; expected 1-5 or empty")
    return annotator, ratings


def _experts(paths, reader, key: dict, key_path) -> dict[str, dict]:
    experts: dict[str, dict] = {}
    for path in paths:
        name, answers = reader(path)
        if unknown := [i for i in answers if i not in key]:
            raise AnnotationError(f"{path}: item_id {unknown[0]!r} is not in the key {key_path}")
        merged = experts.setdefault(name, {})
        if twice := sorted(merged.keys() & answers.keys()):
            raise AnnotationError(f"{path}: annotator {name!r} already answered item_id {twice[0]!r} in another sheet")
        merged.update(answers)
    return experts


def _side_score(letter: str | None, policy: str) -> float | None:
    return None if letter is None else 0.5 if letter == "tie" else float(letter == policy)


def bootstrap_interval(scores, samples: int, confidence: float, seed: int) -> list[float] | None:
    """Percentile bootstrap interval of the mean of `scores` (resampling items)."""
    s = np.asarray(scores, dtype=float)
    if len(s) < 2:
        return None
    means = s[np.random.default_rng(seed).integers(0, len(s), (samples, len(s)))].mean(axis=1)
    return [float(np.quantile(means, (1 - confidence) / 2)), float(np.quantile(means, (1 + confidence) / 2))]


def win_rates(key: dict, experts: dict, items: list[str], samples: int, confidence: float, seed: int) -> dict:
    """Expert win rate of the policy on `items` (overall, with its interval) and per principle."""
    out: dict = {}
    for q in QUESTIONS:
        per_item = []
        for item in items:
            got = [s for e in experts.values() if (s := _side_score(e.get(item, {}).get(q), key[item]["policy"])) is not None]
            if got:
                per_item.append(float(np.mean(got)))
        out[q] = {"n": len(per_item), "win_rate": float(np.mean(per_item)) if per_item else None,
                  "wins": sum(s == 1 for s in per_item), "ties": sum(0 < s < 1 for s in per_item),
                  "losses": sum(s == 0 for s in per_item)}
        if q == "overall":
            out[q]["ci"] = bootstrap_interval(per_item, samples, confidence, seed)
    return {"overall": out.pop("overall"), "per_principle": out}


def rating_means(rating_key: dict, raters: dict) -> dict:
    """{setting: {side: {principle: {"mean", "n"}}}} over every expert's rating of every answer."""
    pooled: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for answers in raters.values():
        for item, ratings in answers.items():
            rec = rating_key[item]
            for p, v in ratings.items():
                if v is not None:
                    for setting in (rec["setting"], ALL):
                        pooled[setting][rec["side"]][p].append(v)
    order = [*dict.fromkeys(r["setting"] for r in rating_key.values()), ALL]  # the settings, then all of them
    return {setting: {side: {p: {"mean": float(np.mean(v)), "n": len(v)} for p, v in pooled[setting][side].items()}
                      for side in ("policy", "reference") if side in pooled[setting]}
            for setting in order if setting in pooled}


def score_policy_sheets(sheet_paths, key_path, rating_paths=(), rating_key_path=None, *, samples: int = 1000,
                        confidence: float = 0.95, seed: int = 42) -> dict:
    """The expert evaluation's results (a JSON-ready dict): win rates, judge agreement, ratings."""
    key = read_policy_key(key_path)
    experts = _experts(sheet_paths, read_sheet, key, key_path)
    settings = list(dict.fromkeys(r["setting"] for r in key.values()))
    first = next(iter(key.values()))
    judge = {i: {"overall": r["judge_letter"]} for i, r in key.items()}
    report: dict = {"policy": first.get("policy_name"), "reference": first.get("reference_name"),
                    "judge": first.get("judge_model"), "n_items": len(key),
                    "experts": {n: len(v) for n, v in experts.items()}, "bootstrap": {"samples": samples,
                    "confidence": confidence, "seed": seed}, "settings": {}}
    for setting in [*settings, ALL] if len(settings) > 1 else settings:
        items = [i for i, r in key.items() if setting in (ALL, r["setting"])]
        agreements = [compare(name, JUDGE, "overall", answers, judge, items) for name, answers in experts.items()]
        report["settings"][setting] = {
            "n_items": len(items), **win_rates(key, experts, items, samples, confidence, seed),
            "judge_win_rate": _judge_rate(key, items),
            "judge_agreement": [{"expert": a.rater_a, "n": a.n, "agree": a.agree, "percent": a.percent,
                                 "kappa": a.kappa, "ties": a.ties, "missing": a.missing} for a in agreements]}
    if rating_paths:
        if rating_key_path is None:
            raise AnnotationError("rating sheets need their key: --rating-key rating_key.jsonl")
        rating_key = {r["item_id"]: r for _, r in _read_rows(Path(rating_key_path))}
        raters = _experts(rating_paths, read_rating_sheet, rating_key, rating_key_path)
        report["raters"] = {n: len(v) for n, v in raters.items()}
        report["ratings"] = rating_means(rating_key, raters)
    return report


def _judge_rate(key: dict, items: list[str]) -> float | None:
    scores = [{"policy": 1.0, "reference": 0.0, "tie": 0.5}[key[i]["judge"]] for i in items if key[i]["judge"]]
    return float(np.mean(scores)) if scores else None
