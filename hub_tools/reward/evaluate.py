"""Calibration-aware evaluation of a trained reward model on the test pairs (paper §4.1, Table 1, and beyond).

Scores the test (and dev) pairs with the saved folder's model, then writes into that folder:
eval_results.json (accuracy, ROC AUC, ECE, Brier; temperature scaling fitted on the dev pairs with
calibrated ECE/Brier; the length-only baseline; accuracy per coarse topic; the reliability bins; the
LLM-as-ranker baseline when the recipe names one; other reward models on the same pairs and RewardBench-format
results when it names them), the reliability diagram and the card with all of it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..io import need, run_log, write_json
from ..training.preference_data import as_trained, load_pairs, response_text
from .baselines import pair_margins, score_baselines
from .card import EVAL_RESULTS, write_card
from .config import RewardRecipe
from .metrics import (
    TEMPERATURE_BOUNDS,
    accuracy_by_group,
    both_orders,
    fit_temperature,
    length_baseline,
    preference_metrics,
    preference_probability,
    reliability_bins,
)
from .score import RewardScorer

log = logging.getLogger("psycopref")


def _rounded(x: Any, digits: int = 6) -> Any:
    """Floats rounded for a stable, readable results file."""
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, dict):
        return {k: _rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v, digits) for v in x]
    return x


def evaluate_reward(recipe: RewardRecipe) -> dict[str, Any]:
    """Evaluate <work_dir>/reward_model on the recipe's test pairs; returns the metrics written to
    its eval_results.json (and card)."""
    folder = need(recipe.work_dir, recipe.model_dir.name, "reward train")
    repo_id = recipe.repo_id
    bins = recipe.eval.ece_bins
    with run_log(recipe.work_dir):
        pairs = load_pairs(as_trained(recipe.data, folder), recipe.seed)
        test, dev = pairs["test"], pairs["dev"]
        scorer = RewardScorer.from_pretrained(folder, batch_size=recipe.eval.batch_size,
                                              max_batch_tokens=recipe.eval.max_batch_tokens)
        margins = pair_margins(scorer, test, "Scoring test pairs")
        results: dict[str, Any] = {"ece_bins": bins, "test": preference_metrics(margins, bins)}
        reliability = {"raw": reliability_bins(*both_orders(preference_probability(margins)), bins)}
        if len(dev):
            temperature = fit_temperature(pair_margins(scorer, dev, "Scoring dev pairs"))
            scaled = preference_metrics(margins, bins, temperature)
            results["calibrated"] = {"temperature": temperature, "dev_pairs": len(dev),
                                     "at_bound": not TEMPERATURE_BOUNDS[0] * 1.01 < temperature < TEMPERATURE_BOUNDS[1] / 1.01,
                                     "ece": scaled["ece"], "brier": scaled["brier"]}
            reliability["calibrated"] = reliability_bins(*both_orders(preference_probability(margins, temperature)), bins)
        results["length_baseline"] = length_baseline([len(response_text(c)) for c in test["chosen"]],
                                                     [len(response_text(r)) for r in test["rejected"]], margins)
        results["per_topic"] = accuracy_by_group(margins, test["topic_coarse"])
        results["reliability"] = reliability
        if recipe.eval.baselines or recipe.eval.rewardbench:  # the last use of `scorer`: it is released there
            results["baselines"], bench = score_baselines(recipe, test, scorer)
            if bench is not None:
                results["rewardbench"] = bench
        if recipe.eval.ranker is not None:
            from .ranker import rank_pairs

            ranked = test
            if recipe.eval.ranker.max_pairs is not None and recipe.eval.ranker.max_pairs < len(test):
                ranked = test.shuffle(seed=recipe.seed).select(range(recipe.eval.ranker.max_pairs))
            results["ranker"] = rank_pairs(recipe.eval.ranker, recipe.work_dir,
                                           [p[-1]["content"] for p in ranked["prompt"]],
                                           [response_text(c) for c in ranked["chosen"]],
                                           [response_text(r) for r in ranked["rejected"]], recipe.server)
        results = _rounded(results)
        write_json(folder / EVAL_RESULTS, results)
        write_card(recipe, folder, repo_id)
    t = results["test"]
    log.info("test pairs %d: accuracy %.3f, AUC %s, ECE %.3f, Brier %.3f", t["n_pairs"], t["accuracy"],
             t["roc_auc"], t["ece"], t["brier"])
    return results
