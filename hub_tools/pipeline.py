"""Run the stages a recipe names, in order, inside one Runtime (server, cache, backends)."""

from __future__ import annotations

import logging
from typing import Callable

from .config import Recipe, save_resolved
from .runtime import Runtime

log = logging.getLogger("psycopref")

ORDER = ["speeches", "generate", "judge", "pairs", "dataset", "push"]


def _speeches(recipe: Recipe, rt: Runtime):
    from .speeches.stage import run_speeches

    return run_speeches(recipe, backend_factory=rt.backend)


def _generate(recipe: Recipe, rt: Runtime):
    from .generate import run_generate

    return run_generate(recipe, rt)


def _judge(recipe: Recipe, rt: Runtime):
    from .judge.stage import run_judge

    return run_judge(recipe, rt)


def _pairs(recipe: Recipe, rt: Runtime):
    from .dataset.stage import run_pairs

    return run_pairs(recipe)


def _dataset(recipe: Recipe, rt: Runtime):
    from .dataset.stage import run_dataset

    return run_dataset(recipe)


def _push(recipe: Recipe, rt: Runtime):
    from .dataset.stage import run_push

    return run_push(recipe)


STAGES: dict[str, Callable] = {"speeches": _speeches, "generate": _generate, "judge": _judge,
                               "pairs": _pairs, "dataset": _dataset, "push": _push}


def run_stages(recipe: Recipe, stages: list[str]) -> dict[str, object]:
    """Run `stages` (in pipeline order); returns each stage's output. Saves the resolved recipe first."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    ordered = [s for s in ORDER if s in stages]
    save_resolved(recipe, recipe.work_path / "recipe.resolved.yaml")
    outputs = {}
    with Runtime(recipe, ordered) as rt:
        for name in ordered:
            log.info("== stage %s ==", name)
            outputs[name] = STAGES[name](recipe, rt)
    return outputs
