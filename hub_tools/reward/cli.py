"""The reward-model commands:

    psycopref train-reward RECIPE [--training.learning_rate 1e-5 ...]   train; build <work_dir>/reward_model
    psycopref eval-reward RECIPE [...]                                   test metrics, figure and card into it
    psycopref push-reward RECIPE [--hub-dir DIR | --hub]                 publish the folder

Several GPUs: `accelerate launch --config_file recipes/accelerate/<config>.yaml -m hub_tools.cli train-reward RECIPE`.
"""

from __future__ import annotations

from ..config import load, parse_overrides
from ..hub.push import add_recipe_commands, apply_target_flags, report

COMMANDS = {  # subcommand -> help
    "train-reward": "train a Bradley-Terry reward model (TRL RewardTrainer) and build its repo folder",
    "eval-reward": "accuracy, ROC AUC, ECE, Brier, calibration and baselines on the test pairs, into the card",
    "push-reward": "publish the reward model folder to the Hub or a local mirror",
}


def load_reward_recipe(path, overrides=None):
    from .config import RewardRecipe

    return load(RewardRecipe, path, overrides)


def _cmd(args, extra: list[str]) -> int:
    recipe = load_reward_recipe(args.recipe, parse_overrides(extra))
    if args.command == "train-reward":
        from .train import train_reward

        print(train_reward(recipe))
    elif args.command == "eval-reward":
        from .evaluate import evaluate_reward

        t = evaluate_reward(recipe)["test"]
        print(f"{t['n_pairs']} test pairs: accuracy {t['accuracy']:.3f}, ROC AUC {t['roc_auc']}, "
              f"ECE {t['ece']:.3f}, Brier {t['brier']:.3f} -> {recipe.model_dir}")
    else:
        from .artifact import push_reward

        apply_target_flags(recipe.push, args)
        print(report(push_reward(recipe)))
    return 0


def add_cli(sub) -> None:
    add_recipe_commands(sub, COMMANDS, "reward recipe YAML (recipes/<model>/reward/config_*.yaml)", _cmd, push="push-reward")
