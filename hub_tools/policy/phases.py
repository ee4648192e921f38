"""DPO-Iter as phases that own the GPUs in turn, each in a process of its own.

A round is four phases: `generate` (the current policy's K answers per speech: in-process vLLM over the
machine's GPUs, or transformers), `score` (the reward model over every answer, batched by length; then the
best/worst pairs), `train` (DPO, under `accelerate launch` on every GPU when a launcher is given) and
`evaluate` (the new checkpoint on the dev set, its Hub branch). Generate uses the GPUs tensor-parallel
(`tensor_parallel_size` in `iter.generation.params`: one engine over them), data-parallel
(`iter.generation.data_parallel_size` engines, each a worker process on its own GPUs answering a share of
the speeches into the call cache) or both; score runs `iter.score_data_parallel_size` workers, one GPU each
(`workers.py`). The phase starts its workers, waits for them, then does its own step, which finds their
work done: the same responses, scores and manifest as one process. Before round 1, `evaluate` of round 0 measures the starting policy. Each phase runs the same
functions as the in-process loop of `iterate.train_dpo_iter`, reads and writes the same round folders and
manifests, and ends with its process, so its memory (the vLLM engine, the reward model, the training
state) is free before the next phase starts. A phase whose steps the manifest records as done is skipped:
a run resumes at any phase boundary.

    psycopref policy dpo-iter RECIPE --phases [--train-launcher "accelerate launch ..."]   every round, every phase
    psycopref policy dpo-iter RECIPE --phase generate --round 3                            one phase, in this process
    psycopref policy dpo-iter RECIPE --phase generate --round 3 --shard 1/8                its worker 1 of 8 (started by it)
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

from ..config import RecipeError, save_resolved
from ..errors import StageError
from ..serving.cache import ResponseCache
from . import workers
from .config import DPOIterRecipe
from .iterate import (
    Manifest,
    choose_and_build,
    evaluate_round,
    evaluate_start,
    round_facts,
    round_generate,
    round_score,
    round_speeches,
    round_train,
    train_speeches,
)

log = logging.getLogger("psycopref")

PHASES = ("generate", "score", "train", "evaluate")
STEPS = {"generate": ("speeches", "generate"), "score": ("score", "pairs"), "train": ("train",), "evaluate": ("dev",)}
RESOLVED = "recipe.resolved.yaml"  # the recipe every phase process reads (CLI overrides included)


def start_policy(recipe: DPOIterRecipe, k: int, initial: str) -> str:
    """The policy round k starts from: the initial one, then the previous round's checkpoint."""
    return initial if k == 1 else str(recipe.work_path / f"round-{k - 1}" / "checkpoint")


def phase_done(recipe: DPOIterRecipe, phase: str, k: int) -> bool:
    """Whether the manifest of round k records every step of `phase` (its dev judge's verdicts when the recipe
    has one, and its push when rounds are pushed)."""
    steps = STEPS[phase]
    if phase == "evaluate":
        judge = recipe.iter.dev_judge
        if judge is not None and (k > 0 or judge.reference):  # round 0 is judged only against an outside reference
            steps += ("judge",)
        if k > 0 and recipe.iter.push_rounds:
            steps += ("push",)
    m = Manifest(recipe.work_path / f"round-{k}", k)
    return all(m.done(step) is not None for step in steps)


def run_phase(recipe: DPOIterRecipe, phase: str, k: int, shard: tuple[int, int] | None = None) -> None:
    """One phase of round k in this process, opening only what it needs (a Runtime, the reward model); with
    data-parallel workers (`workers.py`) generate and score first start them and wait. `shard` (i, n): run
    as worker i of n of the phase."""
    from ..reward.score import RewardScorer
    from ..serving.runtime import Runtime

    if phase not in PHASES or not 0 <= k <= recipe.iter.rounds or (k == 0 and phase != "evaluate"):
        raise RecipeError(f"no phase {phase!r} of round {k}: phases are {', '.join(PHASES)} of rounds 1.."
                          f"{recipe.iter.rounds}, and evaluate of round 0 (the starting policy)")
    initial = recipe.model.resolved()
    m = Manifest(recipe.work_path / f"round-{k}", k)

    def scorer():
        return RewardScorer.from_pretrained(recipe.iter.reward_model_folder(), batch_size=recipe.iter.score_batch_size)

    if shard is not None:
        if phase not in workers.SHARDS:
            raise RecipeError(f"--shard: only the generate and score phases have data-parallel workers, not {phase!r}")
        workers.run_shard(recipe, phase, k, *shard, start_policy(recipe, k, initial), scorer)
        return
    n = workers.workers(recipe, phase)[0]
    if phase == "train":
        round_train(recipe, k, start_policy(recipe, k, initial), initial)
    elif phase == "score":
        if n > 1 and not m.done("score"):
            start_workers(recipe, phase, k)
        round_score(recipe, workers.MergedScores(recipe, k, n) if n > 1 else scorer(), k, m)
    else:
        pool, dev = train_speeches(recipe)
        if phase == "generate" and n > 1 and not m.done("generate"):
            round_speeches(recipe, k, pool, m)  # drawn once, before the workers share them out
            start_workers(recipe, phase, k)
        with Runtime(recipe.work_dir, recipe.endpoints(), recipe.server) as rt:  # the dev judge's endpoints too
            if phase == "generate":
                round_generate(recipe, rt, k, start_policy(recipe, k, initial), pool, m)
            elif k == 0:
                evaluate_start(recipe, rt, scorer(), initial, dev)
            else:
                evaluate_round(recipe, rt, scorer(), k, dev)


def phase_command(recipe_file: Path, phase: str, k: int, launcher: str | None = None) -> list[str]:
    """The command that runs one phase in a process of its own; `launcher` (e.g. "accelerate launch
    --config_file recipes/accelerate/deepspeed_zero3.yaml --num_processes 8") starts the train phase."""
    args = ["-m", "hub_tools.cli", "policy", "dpo-iter", str(recipe_file), "--phase", phase, "--round", str(k)]
    if phase == "train" and launcher:
        return [*shlex.split(launcher), *args]
    return [sys.executable, *args]


def start_workers(recipe: DPOIterRecipe, phase: str, k: int) -> None:
    """The phase's data-parallel workers, each a process pinned to its GPUs, run together; waits for all."""
    n, per = workers.workers(recipe, phase)
    devices = workers.gpu_plan(n, per)
    ResponseCache(recipe.work_path / "cache.sqlite").close()  # created (WAL) before the workers share it
    resolved = save_resolved(recipe, recipe.work_path / f"round-{k}" / f"{phase}.recipe.yaml")
    procs = []
    for i, gpus in enumerate(devices):
        cmd = [*phase_command(resolved, phase, k), "--shard", f"{i}/{n}"]
        log.info("== DPO-Iter round %d: %s worker %d of %d on GPUs %s == %s", k, phase, i, n, gpus, shlex.join(cmd))
        procs.append((cmd, subprocess.Popen(cmd, env={**os.environ, "CUDA_VISIBLE_DEVICES": gpus})))
    failed = [(cmd, code) for cmd, p in procs if (code := p.wait()) != 0]
    if failed:
        raise StageError(f"DPO-Iter round {k}, phase {phase}: {len(failed)} of {n} workers failed (exit "
                         f"{failed[0][1]}: {shlex.join(failed[0][0])}); their finished work is kept, rerun to resume")


def run_phases(recipe: DPOIterRecipe, launcher: str | None = None) -> Path:
    """Every round as phases in separate processes (each skipped when its manifest says it is done), then
    the best round's pushable folder, built here; returns it."""
    recipe.repo_id  # noqa: B018  (a recipe that cannot name its repo fails before any round)
    recipe.dpo_config()
    recipe = recipe.pinned()  # every phase process reads the Hub inputs at the commits pinned here
    resolved = save_resolved(recipe, recipe.work_path / RESOLVED)
    plan = [("evaluate", 0)] + [(phase, k) for k in range(1, recipe.iter.rounds + 1) for phase in PHASES]
    for phase, k in plan:
        if phase_done(recipe, phase, k):
            continue
        cmd = phase_command(resolved, phase, k, launcher)
        log.info("== DPO-Iter round %d: %s == %s", k, phase, shlex.join(cmd))
        code = subprocess.run(cmd, check=False).returncode
        if code != 0:
            raise StageError(f"DPO-Iter round {k}, phase {phase} failed (exit {code}): {shlex.join(cmd)}; the rounds "
                             "and phases before it are kept, rerun the same command to resume there")
    return choose_and_build(recipe, [round_facts(recipe, k) for k in range(1, recipe.iter.rounds + 1)])
