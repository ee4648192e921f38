"""DPO-Iter (paper §4.2, after Pang et al., 2024): rounds of sample → score → pair → DPO.

Each round draws `speeches_per_round` train speeches (seeded by the round), asks the current policy for
K answers to each through the same `run_generate` stage as the dataset build (the policy is the only
pool member, `samples_per_member: K`), scores them with the reward model, keeps every speech's highest-
against lowest-rewarded answer (`pairs.build.best_and_worst`, optionally a minimum reward margin) and
trains DPO from the current policy. A dev set (10% of train speeches, held out by speech) is answered
after every round (and before the first); the best round is the published model, as the paper keeps
its best checkpoint: by a pairwise judge's dev win rate when `iter.dev_judge` is set, else by mean dev
reward (`selection.py`).

Resumable: every round has a folder with a manifest of its finished steps; a rerun skips them, and the
generation calls are cached, so a killed run picks up at the unfinished step and never regenerates a
finished round. With `iter.push_rounds` each round's checkpoint goes to its own Hub branch (round-k).
"""

from __future__ import annotations

import contextlib
import logging
import random
from pathlib import Path
from typing import Any

from accelerate import PartialState
from datasets import Dataset

from ..config import RecipeError, Responder, save_resolved
from ..generate.config import GenerateConfig
from ..generate.stage import run_generate
from ..io import PAIRS, RESPONSES, SPEECHES, load_stage, read_json, run_log, save_atomic, write_json
from ..pairs.build import best_and_worst
from ..serving.runtime import Runtime
from ..training.preference_data import dev_speeches, load_pairs
from .config import DPOIterRecipe
from .data import as_policy_prompt
from .selection import choose_round, dev_winrate, round_rule
from .train import train_checkpoint

log = logging.getLogger("psycopref")
MANIFEST = "manifest.json"


class Manifest:
    """A round's finished steps and what they produced, saved after every step."""

    def __init__(self, folder: Path, round_no: int):
        self.path = folder / MANIFEST
        self.data = read_json(self.path) or {"round": round_no, "steps": {}}

    def done(self, step: str) -> dict | None:
        return self.data["steps"].get(step)

    def mark(self, step: str, **facts: Any) -> dict:
        self.data["steps"][step] = facts
        write_json(self.path, self.data)
        return facts


def train_speeches(recipe: DPOIterRecipe) -> tuple[Dataset, Dataset]:
    """(train pool, dev) speeches — one row per speech of the dataset's train pairs, with id, text and
    topic; dev is `iter.dev_fraction` of them, held out by speech id."""
    pairs = load_pairs(recipe.data.model_copy(update={"dev_fraction": 0.0}), recipe.seed)["train"]
    seen: dict[str, dict] = {}
    for row in pairs.select_columns(["ID", "prompt", "topic_coarse"]):
        seen.setdefault(row["ID"], {"id": row["ID"], "text": row["prompt"][-1]["content"],
                                    "topic_coarse": row["topic_coarse"]})
    rows = [seen[k] for k in sorted(seen)]
    held = dev_speeches([r["id"] for r in rows], recipe.iter.dev_fraction, recipe.seed)
    dev = [r for r in rows if r["id"] in held][: recipe.iter.dev_limit]
    pool = [r for r in rows if r["id"] not in held]
    if not pool:
        raise RecipeError(f"data.path {recipe.data.path!r}: no train speeches left after holding out the dev set")
    return Dataset.from_list(pool), Dataset.from_list(dev) if dev else Dataset.from_list([], features=None)


def _generation_backend(recipe: DPOIterRecipe) -> str:
    chosen = recipe.iter.generation.backend
    if chosen:
        return chosen
    import importlib.util

    import torch

    return "vllm" if torch.cuda.is_available() and importlib.util.find_spec("vllm") else "transformers"


def _member(recipe: DPOIterRecipe, policy: str, name: str, seed: int) -> Responder:
    """The current policy as the round's only pool member (each sample gets seed + its index)."""
    params = {**recipe.iter.generation.params, "seed": seed}
    return Responder(name=name, backend=_generation_backend(recipe), model=policy, params=params)


def sample_round(pool: Dataset, n: int, seed: int, round_no: int) -> Dataset:
    """The round's speeches: a seeded sample of the train pool (all of it when n >= its size)."""
    if n >= len(pool):
        return pool
    picked = sorted(random.Random(f"{seed}:round-{round_no}").sample(range(len(pool)), n))
    return pool.select(picked)


def answer_conversations(speeches: Dataset, responses: Dataset) -> list[list[dict]]:
    """What the reward model reads for each response: [user: speech, assistant: response]."""
    text = dict(zip(speeches["id"], speeches["text"]))
    return [[{"role": "user", "content": text[r["speech_id"]]}, {"role": "assistant", "content": r["response"]}]
            for r in responses]


def score_responses(scorer, speeches: Dataset, responses: Dataset) -> Dataset:
    """The reward of every response through the reward model (`scorer.score`)."""
    rewards = scorer.score(answer_conversations(speeches, responses), desc="scoring samples")
    return responses.select_columns(["speech_id", "response_id", "response"]).add_column("reward", [float(x) for x in rewards])


def reward_pairs(speeches: Dataset, scored: Dataset, min_margin: float) -> tuple[Dataset, dict]:
    """Each speech's best- against worst-rewarded answer, as DPO pairs (prompt: the Responding Prompt)."""
    text = dict(zip(speeches["id"], speeches["text"]))
    by_speech: dict[str, list[dict]] = {}
    for row in scored:
        by_speech.setdefault(row["speech_id"], []).append(row)
    rows, dropped = [], 0
    for sid in sorted(by_speech):
        hi, lo = best_and_worst(by_speech[sid], score="reward")
        if hi["reward"] - lo["reward"] < min_margin or hi["response_id"] == lo["response_id"]:
            dropped += 1
            continue
        rows.append({"ID": sid, "prompt": as_policy_prompt([{"role": "user", "content": text[sid]}]),
                     "chosen": [{"role": "assistant", "content": hi["response"]}],
                     "rejected": [{"role": "assistant", "content": lo["response"]}],
                     "margin": hi["reward"] - lo["reward"]})
    margins = [r["margin"] for r in rows]
    return Dataset.from_list(rows), {"pairs": len(rows), "dropped_margin": dropped,
                                     "mean_margin": sum(margins) / len(margins) if margins else None}


def sample_answers(recipe: DPOIterRecipe, rt: Runtime, member: Responder, speeches: Dataset, folder: Path,
                   samples: int) -> Dataset:
    """`samples` answers per speech from the policy, through the generate stage (cached); the policy's
    in-process model is released afterwards, so the next round's (or the trainer's) memory is free."""
    cfg = GenerateConfig(pool=[member], members_per_speech=1, samples_per_member=samples,
                         concurrency=recipe.iter.generation.concurrency)
    try:
        return run_generate(cfg, folder, rt, seed=recipe.seed, speeches=speeches)
    finally:
        rt.release(member)
        _free_accelerator()


def _free_accelerator() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def dev_reward(recipe: DPOIterRecipe, rt: Runtime, scorer, policy: str, dev: Dataset, folder: Path,
               name: str) -> float | None:
    """Mean reward of the policy's answers (one each) to the dev speeches."""
    if not len(dev):
        return None
    answers = sample_answers(recipe, rt, _member(recipe, policy, name, recipe.seed), dev, folder, 1)
    scored = score_responses(scorer, dev, answers)
    return float(sum(scored["reward"]) / len(scored))


def round_member(recipe: DPOIterRecipe, k: int, start: str) -> Responder:
    """The policy `start` as round k's sampler (its seed, its name in the responses)."""
    return _member(recipe, start, f"policy-round-{k - 1}", recipe.seed * 1000 + k)


def round_speeches(recipe: DPOIterRecipe, k: int, pool: Dataset, m: Manifest) -> None:
    """The round's speeches, drawn from the train pool (step speeches)."""
    folder = recipe.work_path / f"round-{k}"
    if not m.done("speeches"):
        save_atomic(sample_round(pool, recipe.iter.speeches_per_round, recipe.seed, k), folder / SPEECHES)
        m.mark("speeches", n=len(load_stage(folder, SPEECHES, "policy dpo-iter")))


def round_generate(recipe: DPOIterRecipe, rt: Runtime, k: int, start: str, pool: Dataset, m: Manifest) -> None:
    """The round's speeches drawn and K answers each from the policy `start` (steps speeches, generate)."""
    it, folder = recipe.iter, recipe.work_path / f"round-{k}"
    round_speeches(recipe, k, pool, m)
    if not m.done("generate"):
        speeches = load_stage(folder, SPEECHES, "policy dpo-iter")
        sample_answers(recipe, rt, round_member(recipe, k, start), speeches, folder, it.generation.samples)
        m.mark("generate", policy=start, samples=it.generation.samples)


def round_score(recipe: DPOIterRecipe, scorer, k: int, m: Manifest) -> None:
    """The answers' rewards and the (best, worst) pairs (steps score, pairs)."""
    it, folder = recipe.iter, recipe.work_path / f"round-{k}"
    speeches = load_stage(folder, SPEECHES, "policy dpo-iter")
    if not m.done("score"):
        save_atomic(score_responses(scorer, speeches, load_stage(folder, RESPONSES, "policy dpo-iter")), folder / "scores")
        m.mark("score", reward_model=it.reward_model)
    if not m.done("pairs"):
        pairs, facts = reward_pairs(speeches, load_stage(folder, "scores", "policy dpo-iter"), it.min_margin)
        if not len(pairs):
            raise RecipeError(f"round {k}: no speech has two answers whose rewards differ by >= iter.min_margin "
                              f"({it.min_margin}); lower it or sample more answers (iter.generation.samples)")
        save_atomic(pairs, folder / PAIRS)
        m.mark("pairs", **facts)


def round_train(recipe: DPOIterRecipe, k: int, start: str, initial: str) -> None:
    """DPO from `start` on the round's pairs (step train), on every process of an `accelerate launch`."""
    state = PartialState()
    folder = recipe.work_path / f"round-{k}"
    if not Manifest(folder, k).done("train"):
        reference = initial if recipe.iter.reference == "initial" and k > 1 else None
        report = train_checkpoint(recipe, load_stage(folder, PAIRS, "policy dpo-iter"), start, folder / "checkpoint",
                                  reference=reference, trainer_dir=folder / "trainer")
        _free_accelerator()
        if state.is_main_process:
            Manifest(folder, k).mark("train", **{key: report[key] for key in ("global_step", "train_loss", "train_pairs")},
                                     logged_losses=report["logged_losses"])


def evaluate_round(recipe: DPOIterRecipe, rt: Runtime, scorer, k: int, dev: Dataset) -> None:
    """The round's checkpoint on the dev set (step dev), against the reference by the judge when `iter.dev_judge`
    is set (step judge) and, with `iter.push_rounds`, its Hub branch (push)."""
    it, folder = recipe.iter, recipe.work_path / f"round-{k}"
    m = Manifest(folder, k)
    if not m.done("dev"):
        m.mark("dev", reward=dev_reward(recipe, rt, scorer, str(folder / "checkpoint"), dev, folder / "dev",
                                        f"policy-round-{k}"))
    if it.dev_judge is not None and not m.done("judge"):
        m.mark("judge", **dev_winrate(recipe, rt, dev, k))
    if it.push_rounds and not m.done("push"):
        _push_round(recipe, folder / "checkpoint", k)
        m.mark("push", branch=f"round-{k}")


def round_facts(recipe: DPOIterRecipe, k: int) -> dict:
    """A finished round's manifest facts, for the choice of the best round and the card."""
    steps = Manifest(recipe.work_path / f"round-{k}", k).data["steps"]
    return {"round": k, "speeches": steps["speeches"]["n"], "pairs": steps["pairs"]["pairs"],
            "mean_margin": steps["pairs"]["mean_margin"], "global_step": steps["train"]["global_step"],
            "train_loss": steps["train"]["train_loss"], "train_pairs": steps["train"]["train_pairs"],
            "logged_losses": steps["train"]["logged_losses"], "dev_reward": steps["dev"]["reward"],
            "dev_winrate": steps.get("judge", {}).get("win_rate"),
            "dev_swap_consistency": steps.get("judge", {}).get("swap_consistency")}


def run_round(recipe: DPOIterRecipe, rt: Runtime | None, scorer, k: int, start: str, initial: str, pool: Dataset,
              dev: Dataset) -> dict:
    """One round, resumable step by step; returns its manifest facts for the card. Under `accelerate
    launch` the main process samples, scores and pairs, every process trains, the main process
    evaluates and pushes (`rt` and `scorer` exist on the main process only). `policy.phases` runs the
    same steps as separate processes instead."""
    state = PartialState()
    folder = recipe.work_path / f"round-{k}"
    if state.is_main_process:
        round_generate(recipe, rt, k, start, pool, Manifest(folder, k))
        round_score(recipe, scorer, k, Manifest(folder, k))
    state.wait_for_everyone()
    round_train(recipe, k, start, initial)
    state.wait_for_everyone()
    if state.is_main_process:
        evaluate_round(recipe, rt, scorer, k, dev)
    state.wait_for_everyone()
    return round_facts(recipe, k)


def _push_round(recipe: DPOIterRecipe, checkpoint: Path, k: int) -> None:
    from .artifact import build_policy_folder, push_policy

    if recipe.push.hub_dir is not None:
        log.info("round %d: a local Hub mirror keeps one version; branch round-%d is pushed to the Hub only", k, k)
        return
    folder = build_policy_folder(recipe, checkpoint, recipe.repo_id, out=checkpoint.parent / "round_model")
    push_policy(recipe, folder, revision=f"round-{k}")


def train_dpo_iter(recipe: DPOIterRecipe) -> Path:
    """Run (or resume) every round and build the best round's pushable folder; returns it."""
    from ..reward.score import RewardScorer

    recipe.repo_id  # noqa: B018  (a recipe that cannot name its repo fails before any round)
    if recipe.model.base_hub_id is None:
        raise RecipeError(f"model.hub_id: {recipe.model.name_or_path!r} is a local model; name its Hub id for the card")
    recipe.dpo_config()
    recipe = recipe.pinned()  # Hub inputs read at one commit, recorded in the published recipe
    if recipe.iter.generation.data_parallel_size > 1 or recipe.iter.score_data_parallel_size > 1:
        log.warning("iter data_parallel_size settings: data-parallel workers run in phased runs only (--phases, "
                    "--phase); this run samples and scores in one process")
    state = PartialState()
    if state.is_main_process:
        save_resolved(recipe, recipe.work_path / "recipe.resolved.yaml")
    with run_log(recipe.work_dir), contextlib.ExitStack() as stack:
        pool, dev = train_speeches(recipe)
        initial = recipe.model.resolved()
        rt = scorer = None
        if state.is_main_process:  # sampling and scoring happen on the main process
            rt = stack.enter_context(Runtime(recipe.work_dir, recipe.endpoints(), recipe.server))
            scorer = RewardScorer.from_pretrained(recipe.iter.reward_model_folder(),
                                                  batch_size=recipe.iter.score_batch_size)
            evaluate_start(recipe, rt, scorer, initial, dev)
        rounds, start = [], initial
        for k in range(1, recipe.iter.rounds + 1):
            log.info("== DPO-Iter round %d of %d ==", k, recipe.iter.rounds)
            rounds.append(run_round(recipe, rt, scorer, k, start, initial, pool, dev))
            start = str(recipe.work_path / f"round-{k}" / "checkpoint")
    if not state.is_main_process:
        return recipe.model_dir
    return choose_and_build(recipe, rounds)


def evaluate_start(recipe: DPOIterRecipe, rt: Runtime, scorer, initial: str, dev: Dataset) -> None:
    """The starting policy on the dev set (round 0's step dev), the baseline every round is compared with."""
    zero = Manifest(recipe.work_path / "round-0", 0)
    if not zero.done("dev"):
        zero.mark("dev", reward=dev_reward(recipe, rt, scorer, initial, dev, recipe.work_path / "round-0" / "dev",
                                           "policy-round-0"))
    if recipe.iter.dev_judge and recipe.iter.dev_judge.reference and not zero.done("judge"):
        zero.mark("judge", **dev_winrate(recipe, rt, dev, 0))  # the start against an outside reference


def choose_and_build(recipe: DPOIterRecipe, rounds: list[dict]) -> Path:
    """The best round by mean dev reward, built into the pushable policy folder (with the rounds table)."""
    from .artifact import build_policy_folder

    repo_id = recipe.repo_id
    zero = Manifest(recipe.work_path / "round-0", 0)
    table = [{"round": 0, "dev_reward": zero.done("dev")["reward"], "dev_winrate": (zero.done("judge") or {}).get("win_rate")},
             *rounds]
    rule = round_rule(recipe)
    best = choose_round(table, rule)
    log.info("best round by %s: %d", "the judge's dev win rate" if rule == "judge" else "mean dev reward", best)
    totals = {"train_pairs": sum(r["train_pairs"] for r in rounds), "global_step": sum(r["global_step"] for r in rounds),
              "rounds": len(rounds), "best_round": best, "selected_by": rule,
              "logged_losses": [x for r in rounds for x in r["logged_losses"]]}
    return build_policy_folder(recipe, recipe.work_path / f"round-{best}" / "checkpoint", repo_id, rounds=table,
                               report=totals)
