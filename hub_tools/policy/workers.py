"""Data-parallel workers of DPO-Iter's generate and score phases: N processes, each on GPUs of its own.

generate (`iter.generation.data_parallel_size` = N): worker i is a vLLM engine on `tensor_parallel_size` GPUs,
pinned through CUDA_VISIBLE_DEVICES, answering speeches i, i+N, ... of the round into the work dir's call cache
(SQLite in WAL mode, shared by the processes). As in vLLM's data-parallel offline example, every rank is an
engine of its own with its own share of the prompts; a dense policy needs nothing more between them. The
phase's own generate then finds every answer cached and asks no engine; a killed worker's finished answers
stay cached, so a rerun sends only the rest.

score (`iter.score_data_parallel_size` = N): worker i scores batches i, i+N, ... of the one-process batch plan
(longest first) on one GPU and writes `score-shards/<i>-of-<N>.npz`; every answer is scored in the batch it
would have in one process, so the merged rewards are the single process's. A finished shard is not scored again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..config import RecipeError
from ..errors import StageError
from ..io import RESPONSES, SPEECHES, load_stage
from .config import DPOIterRecipe
from .iterate import answer_conversations, round_member, sample_answers

SHARDS = {"generate": "generate-shards", "score": "score-shards"}  # a round's folder of worker outputs


def workers(recipe: DPOIterRecipe, phase: str) -> tuple[int, int]:
    """(worker processes, GPUs per worker) of a phase: 1 worker means the phase's own process does the work."""
    if phase == "generate":
        params = recipe.iter.generation.params
        per = int(params.get("tensor_parallel_size", 1)) * int(params.get("pipeline_parallel_size", 1))
        return recipe.iter.generation.data_parallel_size, per
    if phase == "score":
        return recipe.iter.score_data_parallel_size, 1
    return 1, 0


def gpu_plan(n: int, per: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each of `n` workers with `per` GPUs each, taken in order from the GPUs this
    process may use (its own CUDA_VISIBLE_DEVICES, else 0, 1, ...)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g.strip() for g in visible.split(",") if g.strip()] if visible else [str(i) for i in range(n * per)]
    if len(gpus) < n * per:
        raise RecipeError(f"{n} workers of {per} GPU(s) each need {n * per} GPUs; CUDA_VISIBLE_DEVICES={visible!r} "
                          f"names {len(gpus)}")
    return [",".join(gpus[i * per:(i + 1) * per]) for i in range(n)]


def shard_file(recipe: DPOIterRecipe, k: int, i: int, n: int) -> Path:
    return recipe.work_path / f"round-{k}" / SHARDS["score"] / f"{i}-of-{n}.npz"


def run_shard(recipe: DPOIterRecipe, phase: str, k: int, i: int, n: int, start: str, scorer) -> None:
    """Worker i of n: its share of round k's answers (generate, through the cache) or rewards (score, to its
    shard file). `scorer()` builds the reward model."""
    from ..serving.runtime import Runtime

    if not 0 <= i < n:
        raise RecipeError(f"--shard {i}/{n}: a worker's index is 0..{n - 1}")
    folder = recipe.work_path / f"round-{k}"
    speeches = load_stage(folder, SPEECHES, "policy dpo-iter")
    if phase == "generate":
        member = round_member(recipe, k, start)
        with Runtime(recipe.work_dir, [member]) as rt:
            sample_answers(recipe, rt, member, speeches.select(range(i, len(speeches), n)),
                           folder / SHARDS["generate"] / f"{i}-of-{n}", recipe.iter.generation.samples)
        return
    out = shard_file(recipe, k, i, n)
    if out.is_file():
        return
    rewards = scorer().score(answer_conversations(speeches, load_stage(folder, RESPONSES, "policy dpo-iter")),
                             desc=f"scoring samples (worker {i} of {n})", shard=(i, n))
    index = np.flatnonzero(~np.isnan(rewards))
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(".part")
    with part.open("wb") as f:  # whole or absent: a killed worker's shard is scored again
        np.savez(f, index=index, reward=rewards[index], devices=os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    os.replace(part, out)


class MergedScores:
    """The score workers' shard files as a scorer: `score(conversations)` is every reward, in answer order."""

    def __init__(self, recipe: DPOIterRecipe, k: int, n: int):
        self.files = [shard_file(recipe, k, i, n) for i in range(n)]

    def score(self, conversations, desc: str | None = None) -> np.ndarray:
        rewards = np.full(len(conversations), np.nan)
        for f in self.files:
            with np.load(f) as shard:
                if np.isfinite(rewards[shard["index"]]).any():
                    raise StageError(f"{f}: scores answers another shard scored too; delete {f.parent} and rerun")
                rewards[shard["index"]] = shard["reward"]
        if np.isnan(rewards).any():
            raise StageError(f"{self.files[0].parent}: {int(np.isnan(rewards).sum())} of {len(rewards)} answers have "
                             "no score in the workers' shards; delete the folder and rerun the score phase")
        return rewards
