"""The reward-model commands:

    psycopref reward train RECIPE [--training.learning_rate 1e-5 ...]   train; build <work_dir>/reward_model
    psycopref reward eval RECIPE [...]                                   test metrics, figure and card into it
    psycopref reward push RECIPE [--hub-dir DIR | --hub]                 publish the folder

Several GPUs: `accelerate launch --config_file recipes/accelerate/<config>.yaml -m hub_tools.cli reward train RECIPE`.
The old names (`train-reward`, `eval-reward`, `push-reward`) still work for one release.
"""

from __future__ import annotations

from ..commands import apply_target_flags, group, rename
from ..config import load_any, parse_overrides
from ..hub.push import report

RECIPE_HELP = "reward recipe YAML (recipes/<model>/reward/config_*.yaml)"


def _cmd(args, extra: list[str]) -> int:
    recipe = load_any(args.recipe, parse_overrides(extra), kind="reward")
    if args.verb == "train":
        from .train import train_reward

        print(train_reward(recipe))
    elif args.verb == "eval":
        from .evaluate import evaluate_reward

        results = evaluate_reward(recipe)
        t = results["test"]
        print(f"{t['n_pairs']} test pairs: accuracy {t['accuracy']:.3f}, ROC AUC {t['roc_auc']}, "
              f"ECE {t['ece']:.3f}, Brier {t['brier']:.3f} -> {recipe.model_dir}")
        for b in results.get("baselines", []):
            print(f"  baseline {b['model']}: accuracy {b['test']['accuracy']:.3f}, ROC AUC {b['test']['roc_auc']}")
        for m in (results.get("rewardbench") or {}).get("models", []):
            print(f"  RewardBench {m['model']}: score {m['score']:.1f} "
                  + ", ".join(f"{k} {v:.1f}" for k, v in m["sections"].items()))
    else:
        from .artifact import push_reward

        apply_target_flags(recipe.push, args)
        print(report(push_reward(recipe)))
    return 0


def add_cli(sub) -> None:
    reward = group(sub, "reward", "Bradley-Terry reward models (paper §4.1)")
    reward.recipe_verb("train", "train a reward model (TRL RewardTrainer) into its repo folder", _cmd, RECIPE_HELP)
    reward.recipe_verb("eval", "test-pair accuracy, AUC, ECE, Brier, baselines, into the card", _cmd,
                       RECIPE_HELP)
    reward.recipe_verb("push", "publish the reward model folder (Hub or local mirror)", _cmd, RECIPE_HELP, push=True)
    for verb in ("train", "eval", "push"):
        rename(f"{verb}-reward", "reward", verb)
