"""Which checkpoint a policy publishes, chosen on the dev set (paper §4: 10% of the training data as a dev
set to choose checkpoints; its Figure 4 shows offline DPO's win rate rising, then falling), and the record
of every candidate that the folder and the card keep.

Offline DPO: TRL's DPOTrainer evaluates the dev pairs every `eval_steps` (loss, DPO reward accuracy and
margin: how often and by how much the policy's implicit reward prefers the chosen answer); with
`load_best_model_at_end` transformers keeps the best checkpoint by `metric_for_best_model` (beside
`save_total_limit`'s newest) and loads it at the end. `dev_checkpoints` reads every evaluation back
from the log history into checkpoints.json.

DPO-Iter: every round's policy answers the dev speeches; the rule `round_rule` names picks the round:
the judge's swap-consistent win rate against the dev reference when `iter.dev_judge` is set (the paper's
own measure, and not the reward model the rounds were trained to please), else the mean dev reward.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..io import RESPONSES, load_stage, write_jsonl
from ..serving.runtime import Runtime
from .config import DPOIterRecipe

log = logging.getLogger("psycopref")

CHECKPOINTS = "checkpoints.json"  # offline DPO: every checkpoint evaluated on dev, and the one published
DEV_METRICS = {"loss": "eval_loss", "accuracy": "eval_rewards/accuracies", "margin": "eval_rewards/margins",
               "chosen_reward": "eval_rewards/chosen", "rejected_reward": "eval_rewards/rejected",
               "winrate": "eval_dev_winrate"}  # ours -> the trainer's (dev_winrate: with a dev judge, dev_judge.py)
RULES = {"judge": "dev_winrate", "reward": "dev_reward"}  # DPO-Iter: rule -> the round's number it maximises


def _step(checkpoint: str | None) -> int | None:
    """The step of a `.../checkpoint-<step>` folder."""
    tail = Path(checkpoint).name.rsplit("-", 1)[-1] if checkpoint else ""
    return int(tail) if tail.isdigit() else None


def dev_checkpoints(history: list[dict[str, Any]], args, best_checkpoint: str | None,
                    global_step: int) -> dict[str, Any] | None:
    """Every evaluation on dev (step, loss, reward accuracy and margin, chosen / rejected rewards), the rule
    that chose the published checkpoint and its step; None when the run never evaluated."""
    evals = [e for e in history if "eval_loss" in e]
    if not evals:
        return None
    metric = args.metric_for_best_model or "loss"
    key = metric if metric.startswith("eval_") else f"eval_{metric}"
    best = _step(best_checkpoint) if args.load_best_model_at_end else None
    if best is not None:
        higher = args.greater_is_better if args.greater_is_better is not None else not key.endswith("loss")
        rule = f"best {key.removeprefix('eval_')} on dev ({'highest' if higher else 'lowest'}; earliest on a tie)"
    else:
        rule = "last step (training.load_best_model_at_end is off)"
    chosen = best if best is not None else global_step
    rows = [{"step": int(e["step"]), "epoch": round(float(e.get("epoch", 0)), 4),
             **{name: round(float(e[k]), 6) for name, k in DEV_METRICS.items() if k in e},
             "chosen": int(e["step"]) == chosen} for e in evals]
    return {"rule": rule, "metric": key if best is not None else None, "chosen_step": chosen,
            "final_step": global_step, "checkpoints": rows}


def round_rule(recipe: DPOIterRecipe) -> str:
    """How DPO-Iter picks its round: 'judge' when a dev judge is configured, else 'reward'."""
    return "judge" if recipe.iter.dev_judge is not None else "reward"


def choose_round(rounds: list[dict[str, Any]], rule: str) -> int:
    """The trained round (round >= 1) with the highest number under `rule` (earliest on a tie); the last
    round when none has one."""
    key = RULES[rule]
    scored = [r for r in rounds if r.get("round", 0) >= 1 and r.get(key) is not None]
    if not scored:
        return max(r["round"] for r in rounds)
    return max(scored, key=lambda r: (r[key], -r["round"]))["round"]


def _answers(folder: Path) -> dict[str, str]:
    responses = load_stage(folder, RESPONSES, "policy dpo-iter")
    return dict(zip(responses["speech_id"], responses["response"]))


def reference_answers(recipe: DPOIterRecipe, rt: Runtime, dev: Dataset) -> dict[str, str]:
    """speech id -> the dev reference's answer: `iter.dev_judge.reference` through the generate stage (cached,
    into <work_dir>/dev-reference), or by default the initial policy's dev answers (round 0's)."""
    from .winrate.evaluate import answer

    ref = recipe.iter.dev_judge.reference
    if ref is None:
        return _answers(recipe.work_path / "round-0" / "dev")
    return answer(ref, dev, recipe.work_path / "dev-reference", rt, seed=recipe.seed,
                  concurrency=recipe.iter.generation.concurrency)


def dev_winrate(recipe: DPOIterRecipe, rt: Runtime, dev: Dataset, k: int) -> dict[str, Any]:
    """Round k's dev answers against the reference's, judged in both orders (paper §4.2's pairwise judge):
    the swap-consistent win rate (both orders agree to count a win or a loss; a flip is a tie), the share of
    order-consistent speeches, and the count judged; the verdicts go to round-k/dev/verdicts.jsonl."""
    from .winrate.pairwise import Pair, judge_pairs

    cfg = recipe.iter.dev_judge
    if not len(dev):
        return {"win_rate": None, "swap_consistency": None, "n": 0}
    mine, ref = _answers(recipe.work_path / f"round-{k}" / "dev"), reference_answers(recipe, rt, dev)
    pairs = [Pair(row["id"], row["text"], mine[row["id"]], ref[row["id"]]) for row in dev]
    records = judge_pairs(cfg.judge, rt, pairs, seed=recipe.seed, desc=f"dev judge round {k}")
    write_jsonl(recipe.work_path / f"round-{k}" / "dev" / "verdicts.jsonl", records)
    out = swap_consistent(records)
    log.info("round %d: dev win rate %s against %s over %d speeches", k, out["win_rate"], reference_name(recipe),
             out["n"])
    return out


def swap_consistent(records: list[dict[str, Any]]) -> dict[str, Any]:
    """`judge_pairs` records -> the win rate (a speech scores 1 when both orders prefer the policy, 0 when
    both prefer the reference, else 0.5), the share of order-consistent speeches, and how many were judged."""
    judged = [r for r in records if r["score"] is not None]
    if not judged:
        return {"win_rate": None, "swap_consistency": None, "n": 0}
    return {"win_rate": round(sum(r["score"] for r in judged) / len(judged), 6),
            "swap_consistency": round(sum(r["score_A"] == r["score_B"] for r in judged) / len(judged), 6),
            "n": len(judged)}


def reference_name(recipe: DPOIterRecipe) -> str:
    """What a round's dev answers are compared with, for logs and the card."""
    ref = recipe.iter.dev_judge.reference if recipe.iter.dev_judge else None
    return f"`{ref.model}`" if ref is not None else "the initial policy"
