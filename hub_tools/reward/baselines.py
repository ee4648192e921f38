"""Other reward models beside this one (paper Table 1 compares with off-the-shelf reward models), and
RewardBench-format data for all of them.

Each baseline is any Hugging Face sequence-classification reward model with one output, loaded by
Hub id or folder and scored through its *own* tokenizer and chat template (a reward model only means
something in the format it was trained on) with the same length-bucketed `RewardScorer`. It gets the
same metrics as this model on the same test pairs (accuracy, ROC AUC, ECE, Brier, per topic; no
temperature: its raw Bradley–Terry probabilities are what a user gets). Models are loaded one at a
time and released before the next, so two 8B models never share the GPU.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

from ..config import RecipeError
from .config import BaselineSection, RewardRecipe
from .metrics import accuracy_by_group, preference_metrics
from .rewardbench import load_rewardbench, rewardbench_metrics
from .score import RewardScorer

log = logging.getLogger("psycopref")

THIS_MODEL = "This model"  # the name of the evaluated model's row in the RewardBench results


def pair_margins(scorer: RewardScorer, ds, desc: str):
    """r(prompt + chosen) − r(prompt + rejected) for every pair of `ds`."""
    chosen, rejected = scorer.score_pairs(ds["prompt"], ds["chosen"], ds["rejected"], desc=desc)
    return chosen - rejected


def _release(scorer: RewardScorer) -> None:
    """Drop a model's weights before loading the next one."""
    import torch

    del scorer.model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load(recipe: RewardRecipe, i: int, baseline: BaselineSection) -> RewardScorer:
    try:
        return RewardScorer.from_pretrained(baseline.name_or_path, dtype=baseline.dtype, max_length=baseline.max_length,
                                            batch_size=recipe.eval.batch_size, max_batch_tokens=recipe.eval.max_batch_tokens)
    except (OSError, ValueError) as err:  # not found, not a sequence-classification model, no pad token
        raise RecipeError(f"eval.baselines[{i}].name_or_path {baseline.name_or_path!r} cannot be loaded as a reward "
                          f"model: {' '.join(str(err).split())}") from err


def score_baselines(recipe: RewardRecipe, test, own: RewardScorer) -> tuple[list[dict], dict | None]:
    """The baseline rows on the test pairs, and (when the recipe names RewardBench data) the RewardBench
    results of this model and of every baseline. `own`, the evaluated model's scorer, is released once
    scored, before the first baseline loads (an 8B model beside a 27B baseline would crowd one GPU)."""
    bench = load_rewardbench(recipe.eval.rewardbench, recipe.seed) if recipe.eval.rewardbench else None
    rows, bench_rows = [], []

    def on_bench(name: str, scorer: RewardScorer) -> None:
        if bench is not None:
            bench_rows.append({"model": name, **rewardbench_metrics(
                pair_margins(scorer, bench, f"Scoring RewardBench pairs ({name})"), bench["subset"])})

    _with_model(own, lambda scorer: on_bench(THIS_MODEL, scorer))
    for i, baseline in enumerate(recipe.eval.baselines):
        def run(scorer: RewardScorer, b: BaselineSection = baseline) -> None:
            margins = pair_margins(scorer, test, f"Scoring test pairs ({b.label})")
            rows.append({"model": b.label, "name_or_path": b.name_or_path,
                         "test": preference_metrics(margins, recipe.eval.ece_bins),
                         "per_topic": accuracy_by_group(margins, test["topic_coarse"]),
                         "truncated": scorer.truncated})
            on_bench(b.label, scorer)

        log.info("baseline reward model %s", baseline.name_or_path)
        _with_model(_load(recipe, i, baseline), run)
    results = None
    if bench is not None:
        results = {"path": recipe.eval.rewardbench.path, "split": recipe.eval.rewardbench.split,
                   "n_pairs": len(bench), "models": bench_rows}
    return rows, results


def _with_model(scorer: RewardScorer, use: Callable[[RewardScorer], None]) -> None:
    try:
        use(scorer)
    finally:
        _release(scorer)
